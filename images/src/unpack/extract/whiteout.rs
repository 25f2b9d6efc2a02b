//! OCI whiteouts, converted to their overlayfs form (each layer is unpacked
//! into its own directory and layers are stacked with overlayfs).
//!
//! Any entry whose name starts with `.wh.` is a whiteout, whatever its tar
//! type:
//!
//! - `.wh..wh..opq` sets [`OVERLAY_OPAQUE_XATTR`] = `y` on its directory;
//! - other `.wh..wh.` names (AUFS metadata) are ignored;
//! - `.wh.NAME` becomes a 0/0 character device `NAME` (an empty `NAME`, `.`
//!   or `..` is refused), unless this layer already holds `NAME`: whiteouts
//!   apply to lower layers only.
//!
//! Both need root (`CAP_SYS_ADMIN` for the `trusted.` xattr, `CAP_MKNOD`).
//! The parent directory is reached as for any entry (no symlink followed),
//! and the device is created and chowned relative to it.

use rustix::fs::{AtFlags, FileType, Mode, XattrFlags, chownat, fsetxattr, mknodat, statat};
use rustix::io::Errno;

use super::meta::Meta;
use super::{Ctx, Extractor};
use crate::unpack::UnpackError;

/// Prefix of an OCI whiteout file name.
pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout metadata names (AUFS leftovers), ignored except the
/// opaque marker.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque-directory marker.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr that makes an overlayfs directory opaque (value `y`).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

impl Extractor<'_> {
    /// Unpacks whiteout entry `parent_comps/name`, whose name is
    /// [`WHITEOUT_PREFIX`] followed by `target`.
    pub(super) fn whiteout(
        &mut self,
        ctx: &Ctx<'_>,
        parent_comps: &[Vec<u8>],
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let parent = self
            .open_dir(ctx.entry, parent_comps, true)?
            .ok_or_else(|| ctx.io("open parent directory")(Errno::NOENT))?;
        if name == WHITEOUT_OPAQUE {
            fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(ctx.io("set trusted.overlay.opaque (needs CAP_SYS_ADMIN)"))?;
            self.stats.opaque_dirs += 1;
            return Ok(());
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(UnpackError::InvalidPath {
                entry: ctx.entry.to_string(),
                reason: "whiteout of an invalid name",
            });
        }
        // A file of the same layer wins over its whiteout (OCI: whiteouts
        // apply to lower layers only).
        match statat(&parent, target, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => return Ok(()),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(ctx.io("inspect whiteout target")(e)),
        }
        mknodat(&parent, target, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(ctx.io("create overlay whiteout (0/0 char device; needs CAP_MKNOD)"))?;
        if self.chown_needed(meta) {
            let (u, g) = Self::owner(meta);
            chownat(&parent, target, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(ctx.io("chown whiteout"))?;
        }
        self.stats.whiteouts += 1;
        Ok(())
    }
}
