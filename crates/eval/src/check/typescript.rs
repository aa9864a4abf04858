//! TypeScript: `tsc` with the checker's own `tsconfig.json` over the entry points and every
//! `.ts` file of the tests folder, then `node --test` on the compiled `*.test.js` files.
//!
//! The project's own `tsconfig.json`, if it wrote one, is not used: every project is checked
//! with the same options (strict, CommonJS, `node10` resolution, `@types/node` and nothing
//! else), `esModuleInterop` (so `import assert from 'node:assert'` works as `tsc --init` sets
//! it up) and `skipLibCheck`. With tests, the one `tsc` run also emits (`noEmitOnError:
//! false`, into `<work>/out`): its diagnostics are those of `tsc --noEmit`, and the tests run
//! even when a file has type errors, as plain Node would run them.

use std::ffi::OsStr;
use std::path::Path;

use super::process::{env_of, run, Ran, TOOL_TIMEOUT};
use super::{files, CheckError, Diagnostic, ErrorClass, Found, Project, TestRun, Toolchains};

/// tsc's error codes and their classes; every code not listed is [`ErrorClass::Other`].
const CODES: &[(&str, ErrorClass)] = &[
    // Cannot find module 'x' (or its type declarations).
    ("TS2307", ErrorClass::MissingImport),
    // Cannot find module 'x'. Did you mean to set the 'moduleResolution' option ...?
    ("TS2792", ErrorClass::MissingImport),
    // Module 'x' has no exported member 'y'.
    ("TS2305", ErrorClass::MissingImport),
    // Module 'x' has no exported member 'y'. Did you mean 'z'?
    ("TS2724", ErrorClass::MissingImport),
    // Module 'x' has no exported member 'y'. Did you mean to use 'import y from "x"' instead?
    ("TS2614", ErrorClass::MissingImport),
    // Module 'x' has no default export.
    ("TS1192", ErrorClass::MissingImport),
    // File 'x' is not a module.
    ("TS2306", ErrorClass::MissingImport),
    // Module 'x' declares 'y' locally, but it is not exported (or: is exported as 'z').
    ("TS2459", ErrorClass::MissingImport),
    ("TS2460", ErrorClass::MissingImport),
    // Expected N arguments, but got M (at least N; a spread argument).
    ("TS2554", ErrorClass::CrossReference),
    ("TS2555", ErrorClass::CrossReference),
    ("TS2556", ErrorClass::CrossReference),
    // No overload matches this call.
    ("TS2769", ErrorClass::CrossReference),
    // Property 'x' does not exist on type 'y' (Did you mean 'z'?; it is static).
    ("TS2339", ErrorClass::CrossReference),
    ("TS2551", ErrorClass::CrossReference),
    ("TS2576", ErrorClass::CrossReference),
    // Argument of type 'x' is not assignable to parameter of type 'y'.
    ("TS2345", ErrorClass::CrossReference),
    // Type 'x' is not assignable to type 'y': a value that does not match the type its
    // definition declares (a field, a return, a variable).
    ("TS2322", ErrorClass::CrossReference),
    // Object literal may only specify known properties (Did you mean?).
    ("TS2353", ErrorClass::CrossReference),
    ("TS2561", ErrorClass::CrossReference),
    // Property 'x' is missing in type 'y' but required in type 'z'; type is missing properties.
    ("TS2741", ErrorClass::CrossReference),
    ("TS2739", ErrorClass::CrossReference),
    ("TS2740", ErrorClass::CrossReference),
    // Cannot find name 'x' (Did you mean 'y'?).
    ("TS2304", ErrorClass::CrossReference),
    ("TS2552", ErrorClass::CrossReference),
    // This expression is not callable / not constructable.
    ("TS2349", ErrorClass::CrossReference),
    ("TS2351", ErrorClass::CrossReference),
    // 'x' only refers to a type, but is used as a value here (and the reverse).
    ("TS2693", ErrorClass::CrossReference),
    ("TS2749", ErrorClass::CrossReference),
];

/// Environment of every Node run: no options or module path from the caller's environment
/// (Node takes an empty value as unset).
const NODE_ENV: &[(&str, &str)] = &[("NODE_OPTIONS", ""), ("NODE_PATH", "")];

/// The class of tsc's error `code`.
fn classify(code: &str) -> ErrorClass {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(ErrorClass::Other, |(_, class)| *class)
}

pub(super) async fn check(tc: &Toolchains, p: &Project<'_>) -> Result<Found, CheckError> {
    let tests = p
        .tests
        .map(|dir| files::under(p.root, dir, |n| n.ends_with(".ts") && !n.ends_with(".d.ts")));
    let mut inputs = p.entry_points.clone();
    for test in tests.iter().flatten() {
        if !inputs.contains(test) {
            inputs.push(test.clone());
        }
    }
    if inputs.is_empty() {
        let tests = TestRun::not_run("no entry point and no test file to compile");
        return Ok(Found {
            errors: Vec::new(),
            tests,
        });
    }
    let out = p.work.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let config = p.work.join("tsconfig.json");
    write_config(tc, p, &inputs, &config)?;
    let errors = compile(tc, p.root, &config, p.tests.is_none()).await?;
    let tests = match p.tests {
        Some(dir) => run_tests(p.root, &out, dir).await?,
        None => TestRun::default(),
    };
    Ok(Found { errors, tests })
}

/// Writes the checker's `tsconfig.json` (absolute paths: it lives in `work`, not the project).
fn write_config(
    tc: &Toolchains,
    p: &Project<'_>,
    inputs: &[String],
    config: &Path,
) -> Result<(), CheckError> {
    let files: Vec<String> = inputs
        .iter()
        .map(|f| p.root.join(f).display().to_string())
        .collect();
    let json = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "module": "commonjs",
            "moduleResolution": "node10",
            "target": "es2022",
            "types": ["node"],
            "typeRoots": [tc.type_roots()],
            "rootDir": p.root,
            "outDir": p.work.join("out"),
            "noEmitOnError": false,
            "esModuleInterop": true,
            "skipLibCheck": true,
            "forceConsistentCasingInFileNames": true,
            "pretty": false,
        },
        "files": files,
    });
    std::fs::write(config, format!("{json:#}\n")).map_err(|source| CheckError::Run {
        tool: "tsc".into(),
        source,
    })
}

/// Runs tsc (emitting unless `no_emit`) and returns its errors.
async fn compile(
    tc: &Toolchains,
    root: &Path,
    config: &Path,
    no_emit: bool,
) -> Result<Vec<Diagnostic>, CheckError> {
    let tsc = tc.tsc();
    let mut args: Vec<&OsStr> = vec![tsc.as_os_str(), "-p".as_ref(), config.as_os_str()];
    if no_emit {
        args.push("--noEmit".as_ref());
    }
    let ran = run(
        Path::new("node"),
        &args,
        root,
        &env_of(NODE_ENV),
        TOOL_TIMEOUT,
    )
    .await
    .map_err(|f| f.into_error("tsc"))?;
    let errors = parse_tsc(&ran.stdout);
    // 0: clean; 1: errors, nothing emitted; 2: errors, output emitted. Anything else, or errors
    // claimed and none printed, is tsc failing rather than the project.
    let understood = match ran.code {
        Some(0) => true,
        Some(1 | 2) => !errors.is_empty(),
        _ => false,
    };
    if understood {
        Ok(errors)
    } else {
        Err(tool_error("tsc", &ran))
    }
}

/// Runs `node --test` on the compiled test files of the tests folder `dir`.
async fn run_tests(root: &Path, out: &Path, dir: &str) -> Result<TestRun, CheckError> {
    let compiled = files::under(out, dir, |n| n.ends_with(".test.js"));
    if compiled.is_empty() {
        return Ok(TestRun::not_run(format!(
            "no compiled *.test.js file under {dir}"
        )));
    }
    // Compiled CommonJS, whatever package.json lies above the scratch folder.
    let _ = std::fs::write(out.join("package.json"), "{\"type\": \"commonjs\"}\n");
    let paths: Vec<std::path::PathBuf> = compiled.iter().map(|f| out.join(f)).collect();
    let mut args: Vec<&OsStr> = vec!["--test".as_ref(), "--test-reporter=tap".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let ran = match run(
        Path::new("node"),
        &args,
        root,
        &env_of(NODE_ENV),
        TOOL_TIMEOUT,
    )
    .await
    {
        Ok(ran) => ran,
        Err(super::process::RunFailure::TimedOut(after)) => {
            return Ok(TestRun::not_run(format!(
                "node --test timed out after {} s",
                after.as_secs()
            )))
        }
        Err(f) => return Err(f.into_error("node --test")),
    };
    Ok(parse_tap(&ran.stdout, ran.tail()))
}

/// tsc's diagnostics (`--pretty false`): `file(line,col): error TS2307: message`, or
/// `error TS5023: message` for one that has no place. Continuation lines are left out.
pub(super) fn parse_tsc(stdout: &str) -> Vec<Diagnostic> {
    stdout.lines().filter_map(parse_tsc_line).collect()
}

fn parse_tsc_line(line: &str) -> Option<Diagnostic> {
    const MARK: &str = "): error TS";
    let (place, rest) = match line.strip_prefix("error TS") {
        Some(rest) => ("", rest),
        None => {
            let at = line.find(MARK)?;
            (&line[..=at], &line[at + MARK.len()..])
        }
    };
    let (digits, message) = rest.split_once(": ")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (file, line_no) = match place.rfind('(') {
        Some(open) => {
            let inside = &place[open + 1..place.len() - 1];
            let line_no = inside.split(',').next()?.parse().ok()?;
            (&place[..open], line_no)
        }
        None => ("", 0),
    };
    let code = format!("TS{digits}");
    Some(Diagnostic {
        class: classify(&code),
        tool: "tsc".into(),
        file: file.trim_start_matches("./").to_owned(),
        line: line_no,
        code,
        message: message.trim().to_owned(),
    })
}

/// `node --test`'s TAP summary (`# tests N`, `# pass N`, `# fail N`, `# cancelled N`, the
/// last of each at the start of a line). A test file that cannot load is a failed test; a
/// cancelled test (its file ended first) counts as failed.
pub(super) fn parse_tap(stdout: &str, output_tail: String) -> TestRun {
    let field = |name: &str| {
        stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u32>().ok())
    };
    let (Some(total), Some(passed)) = (field("# tests "), field("# pass ")) else {
        return TestRun::not_run(output_tail);
    };
    let failed = field("# fail ")
        .unwrap_or_default()
        .saturating_add(field("# cancelled ").unwrap_or_default());
    TestRun {
        ran: total > 0,
        passed,
        failed,
        output_tail,
    }
}

fn tool_error(tool: &str, ran: &Ran) -> CheckError {
    CheckError::Tool {
        tool: tool.into(),
        detail: format!("exit {:?}: {}", ran.code, ran.tail()),
    }
}

#[cfg(test)]
mod tests;
