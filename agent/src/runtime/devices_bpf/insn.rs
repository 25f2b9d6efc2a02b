//! The eBPF instruction encoder: `struct bpf_insn { u8 code; u8 dst:4,
//! src:4; s16 off; s32 imm; }` as a native-endian `u64`, and the few
//! instructions the device filter needs (32-bit ALU, 64-bit jumps). Pure:
//! nothing here talks to the kernel.

/// `BPF_ALU` class operations (`BPF_K` immediate source).
pub const AND: u8 = 0x50;
pub const RSH: u8 = 0x70;
/// `BPF_JMP` class conditions.
pub const JEQ: u8 = 0x10;
pub const JNE: u8 = 0x50;

const CLASS_LDX: u8 = 0x01;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const SIZE_W: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_X: u8 = 0x08;
const OP_MOV: u8 = 0xb0;
const OP_EXIT: u8 = 0x90;

/// Encodes one instruction.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    debug_assert!(dst < 11 && src < 11);
    // Bit-fields are allocated from the low bits on little-endian
    // targets and from the high bits on big-endian ones.
    let regs = if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    };
    let off = off.to_ne_bytes();
    let imm = imm.to_ne_bytes();
    u64::from_ne_bytes([code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]])
}

/// Splits an instruction into `(code, dst, src, off, imm)`.
pub fn decode(word: u64) -> (u8, u8, u8, i16, i32) {
    let b = word.to_ne_bytes();
    let (dst, src) = if cfg!(target_endian = "little") {
        (b[1] & 0xf, b[1] >> 4)
    } else {
        (b[1] >> 4, b[1] & 0xf)
    };
    (
        b[0],
        dst,
        src,
        i16::from_ne_bytes([b[2], b[3]]),
        i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// The same instruction with jump offset `off`.
pub fn with_off(word: u64, off: i16) -> u64 {
    let (code, dst, src, _, imm) = decode(word);
    insn(code, dst, src, off, imm)
}

/// `dst = *(u32 *)(src + off)`.
pub fn ldx_w(dst: u8, src: u8, off: i16) -> u64 {
    insn(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
}

/// `dst = (u32)dst OP imm` ([`AND`], [`RSH`]).
pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> u64 {
    insn(CLASS_ALU | op, dst, 0, 0, imm)
}

/// `dst = (u32)src`.
pub fn mov32_reg(dst: u8, src: u8) -> u64 {
    insn(CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0)
}

/// `dst = (u32)imm`.
pub fn mov32_imm(dst: u8, imm: i32) -> u64 {
    insn(CLASS_ALU | OP_MOV, dst, 0, 0, imm)
}

/// `if dst COND (s64)imm goto pc + 1 + off` ([`JEQ`], [`JNE`]).
pub fn jmp_imm(cond: u8, dst: u8, imm: i32, off: i16) -> u64 {
    insn(CLASS_JMP | cond, dst, 0, off, imm)
}

/// `if dst COND src goto pc + 1 + off`.
pub fn jmp_reg(cond: u8, dst: u8, src: u8, off: i16) -> u64 {
    insn(CLASS_JMP | cond | SRC_X, dst, src, off, 0)
}

/// `return r0`.
pub fn exit() -> u64 {
    insn(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn encodes_instructions_as_the_kernel_lays_them_out() {
        assert_eq!(exit(), 0x95);
        assert_eq!(mov32_imm(0, 1), 0x0000_0001_0000_00b4);
        // ldxw r2, [r1 + 0]: dst in the low nibble, src in the high one.
        assert_eq!(ldx_w(2, 1, 0), 0x1261);
        assert_eq!(ldx_w(5, 1, 8), 0x0008_1561);
        assert_eq!(alu32_imm(AND, 2, 0xffff), 0x0000_ffff_0000_0254);
        assert_eq!(alu32_imm(RSH, 3, 16), 0x0000_0010_0000_0374);
        assert_eq!(mov32_reg(0, 3), 0x30bc);
        assert_eq!(jmp_imm(JNE, 4, 136, 7), 0x0000_0088_0007_0455);
        assert_eq!(jmp_imm(JEQ, 0, 0, 3), 0x0003_0015);
        assert_eq!(jmp_reg(JNE, 0, 3, 2), 0x0002_305d);
        // Negative offsets and immediates keep their bits.
        assert_eq!(jmp_imm(JNE, 1, -1, -2), 0xffff_ffff_fffe_0155);
    }

    #[test]
    fn decode_inverts_insn() {
        for (code, dst, src, off, imm) in [
            (0x61, 2, 1, 0, 0),
            (0x55, 10, 0, -7, -1),
            (0x5d, 0, 9, 300, 1 << 20),
        ] {
            assert_eq!(
                decode(insn(code, dst, src, off, imm)),
                (code, dst, src, off, imm)
            );
        }
        assert_eq!(
            decode(with_off(jmp_imm(JNE, 2, 1, 0), 5)),
            (0x55, 2, 0, 5, 1)
        );
    }
}
