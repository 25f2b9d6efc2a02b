//! Stages: the global ARGs before the first FROM, each stage's base
//! (scratch, an image, or an earlier stage) with its FROM line expanded
//! against global arguments only, and which stages a target needs
//! (reachable through FROM, `COPY --from` and `RUN --mount from=`), in
//! dependency order.

use std::collections::BTreeMap;

use crate::expand::Lexer;
use crate::instruction::{Dockerfile, Instruction, Kind};
use crate::{Error, ErrorKind};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Base {
    Scratch,
    Image(String),
    Stage(usize),
}

/// A stage as found in the Dockerfile.
#[derive(Debug, Clone)]
pub(crate) struct RawStage<'a> {
    pub index: usize,
    pub name: Option<String>,
    pub line: usize,
    pub base: Base,
    /// Expanded `--platform`, if given.
    pub platform: Option<String>,
    /// Instructions after FROM.
    pub body: &'a [Instruction],
}

/// Global ARGs (name → value) in declaration order, with predefined ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalArgs {
    pub values: BTreeMap<String, Option<String>>,
    pub declared: Vec<String>,
}

impl GlobalArgs {
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned().flatten()
    }
}

/// Splits the Dockerfile into global ARGs and stages.
pub(crate) fn split<'a>(
    df: &'a Dockerfile,
    build_args: &BTreeMap<String, String>,
    predefined: &[(String, String)],
    lexer: &Lexer,
) -> Result<(GlobalArgs, Vec<RawStage<'a>>), Error> {
    let mut globals = GlobalArgs::default();
    for (k, v) in predefined {
        globals.values.insert(k.clone(), Some(v.clone()));
    }
    let first_from = df
        .instructions
        .iter()
        .position(|i| matches!(i.kind, Kind::From(_)))
        .ok_or_else(|| {
            Error::syntax(0, "the Dockerfile has no FROM instruction")
                .hint("start the first stage with `FROM IMAGE` (or `FROM scratch`)")
        })?;
    for ins in &df.instructions[..first_from] {
        let Kind::Arg(decls) = &ins.kind else {
            return Err(Error::syntax(
                ins.line,
                format!("{} before the first FROM", ins.kind.name()),
            )
            .hint("only ARG may come before the first FROM; move the instruction into a stage"));
        };
        for d in decls {
            let value = match (build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(def)) => Some(
                    lexer
                        .expand(def, &|n: &str| globals.get(n))
                        .map_err(|e| expansion_error(ins, e))?,
                ),
                (None, None) => globals.get(&d.name),
            };
            globals.values.insert(d.name.clone(), value);
            globals.declared.push(d.name.clone());
        }
    }
    let mut stages: Vec<RawStage> = Vec::new();
    let mut starts: Vec<usize> = df
        .instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.kind, Kind::From(_)))
        .map(|(n, _)| n)
        .collect();
    starts.push(df.instructions.len());
    for w in starts.windows(2) {
        let ins = &df.instructions[w[0]];
        let Kind::From(from) = &ins.kind else {
            unreachable!()
        };
        let vars = |n: &str| globals.get(n);
        let image = lexer
            .expand(&from.image, &vars)
            .map_err(|e| expansion_error(ins, e))?;
        if image.is_empty() {
            return Err(Error::syntax(
                ins.line,
                format!("base name ({}) should not be blank", from.image),
            )
            .hint("declare the ARG it uses before the first FROM or pass --build-arg"));
        }
        let platform = match &from.platform {
            Some(p) => Some(
                lexer
                    .expand(p, &vars)
                    .map_err(|e| expansion_error(ins, e))?,
            ),
            None => None,
        };
        let index = stages.len();
        if let Some(name) = &from.name
            && stages.iter().any(|s| s.name.as_ref() == Some(name))
        {
            return Err(Error::new(
                ErrorKind::Stage,
                ins.line,
                format!("duplicate stage name {name:?}"),
            )
            .hint("give every stage its own name"));
        }
        let lower = image.to_ascii_lowercase();
        let base = if lower == "scratch" {
            Base::Scratch
        } else if let Some(s) = stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
            Base::Stage(s.index)
        } else {
            Base::Image(image)
        };
        stages.push(RawStage {
            index,
            name: from.name.clone(),
            line: ins.line,
            base,
            platform,
            body: &df.instructions[w[0] + 1..w[1]],
        });
    }
    Ok((globals, stages))
}

pub(crate) fn expansion_error(ins: &Instruction, e: crate::expand::ExpandError) -> Error {
    Error::new(ErrorKind::Expansion, ins.line, e.0)
        .hint("check the variable names, quotes and ${…} syntax of this line")
}

/// Finds a stage by name (case-insensitive) or index.
pub(crate) fn find_stage(stages: &[RawStage], reference: &str) -> Option<usize> {
    let lower = reference.to_ascii_lowercase();
    if let Some(s) = stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
        return Some(s.index);
    }
    reference
        .parse::<usize>()
        .ok()
        .filter(|i| *i < stages.len())
}

/// The stage index `target` names (None: the last stage).
pub(crate) fn target_index(stages: &[RawStage], target: Option<&str>) -> Result<usize, Error> {
    match target {
        None => Ok(stages.len() - 1),
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            stages
                .iter()
                .find(|s| s.name.as_deref() == Some(&lower))
                .map(|s| s.index)
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        stages.iter().filter_map(|s| s.name.as_deref()).collect();
                    Error::new(
                        ErrorKind::Stage,
                        0,
                        format!("target stage {t:?} could not be found"),
                    )
                    .hint(if names.is_empty() {
                        "the Dockerfile names no stages: add `AS NAME` to a FROM".to_string()
                    } else {
                        format!("stages are: {}", names.join(", "))
                    })
                })
        }
    }
}

/// Orders the stages `deps` reaches from `target` so dependencies come first.
pub(crate) fn dependency_order(
    target: usize,
    deps: &dyn Fn(usize) -> Vec<(usize, usize)>,
) -> Result<Vec<usize>, Error> {
    fn visit(
        i: usize,
        deps: &dyn Fn(usize) -> Vec<(usize, usize)>,
        state: &mut BTreeMap<usize, bool>,
        out: &mut Vec<usize>,
    ) -> Result<(), Error> {
        match state.get(&i) {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(Error::new(
                    ErrorKind::Stage,
                    0,
                    format!("circular dependency between stages involving stage {i}"),
                )
                .hint("a stage cannot copy from itself or from a stage that depends on it"));
            }
            None => {}
        }
        state.insert(i, false);
        for (dep, line) in deps(i) {
            visit(dep, deps, state, out).map_err(|e| e.on_line(line))?;
        }
        state.insert(i, true);
        out.push(i);
        Ok(())
    }
    let mut state = BTreeMap::new();
    let mut out = Vec::new();
    visit(target, deps, &mut state, &mut out)?;
    Ok(out)
}
