//! Installing the toolchains under one folder, pinned, through the ordinary package clients:
//! npm for `typescript` and `@types/node` (`<dir>/typescript`), a Python virtualenv with
//! `pyflakes` and `mypy` from pip (`<dir>/python`); Rust uses the `cargo` on PATH.
//!
//! Each toolchain is installed into a fresh folder beside its final place, checked, given a
//! marker naming the pinned versions, then renamed into place: a second call that finds the
//! marker returns at once, a failed install leaves nothing behind, and two processes
//! installing at once both end with one complete toolchain.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::process::{run, Ran, INSTALL_TIMEOUT};
use super::{CheckError, Language, Toolchains};

/// The TypeScript compiler, pinned (5.x: the last line that keeps `moduleResolution: node10`
/// without a deprecation error).
pub const TYPESCRIPT_VERSION: &str = "5.9.3";
/// Node's type declarations, pinned to the Node line the checker runs on (20).
pub const TYPES_NODE_VERSION: &str = "20.19.43";
/// pyflakes, pinned.
pub const PYFLAKES_VERSION: &str = "4.1.0";
/// mypy, pinned.
pub const MYPY_VERSION: &str = "2.4.1";

/// The marker file in an installed toolchain's folder: the pinned versions it holds.
const MARKER: &str = "baton-installed.txt";

impl Toolchains {
    /// The TypeScript toolchain's folder (an npm prefix).
    pub(super) fn typescript_dir(&self) -> PathBuf {
        self.dir.join("typescript")
    }

    /// `tsc`'s script, run with `node`.
    pub(super) fn tsc(&self) -> PathBuf {
        self.typescript_dir()
            .join("node_modules/typescript/bin/tsc")
    }

    /// The folder holding `@types/node` (the checker's `typeRoots`).
    pub(super) fn type_roots(&self) -> PathBuf {
        self.typescript_dir().join("node_modules/@types")
    }

    /// The virtualenv's Python (it runs pyflakes, mypy and the project's tests).
    pub(super) fn python(&self) -> PathBuf {
        self.dir.join("python/bin/python")
    }
}

/// Installs every toolchain `languages` name (each once) under `dir`.
pub(super) async fn install(dir: &Path, languages: &[Language]) -> Result<(), CheckError> {
    std::fs::create_dir_all(dir).map_err(|e| install_error("toolchains", &e.to_string()))?;
    let mut done = Vec::new();
    for &language in languages {
        if done.contains(&language) {
            continue;
        }
        done.push(language);
        match language {
            Language::Typescript => install_typescript(dir).await?,
            Language::Python => install_python(dir).await?,
            Language::Rust => check_cargo().await?,
        }
    }
    Ok(())
}

async fn install_typescript(dir: &Path) -> Result<(), CheckError> {
    let pins = format!("typescript@{TYPESCRIPT_VERSION} @types/node@{TYPES_NODE_VERSION}\n");
    let target = dir.join("typescript");
    if installed(&target, &pins) {
        return Ok(());
    }
    let fresh = fresh_dir(dir, "typescript")?;
    let prefix = fresh.as_os_str();
    let typescript = format!("typescript@{TYPESCRIPT_VERSION}");
    let types = format!("@types/node@{TYPES_NODE_VERSION}");
    let args: [&OsStr; 9] = [
        "install".as_ref(),
        "--prefix".as_ref(),
        prefix,
        "--no-audit".as_ref(),
        "--no-fund".as_ref(),
        "--save-exact".as_ref(),
        "--loglevel=error".as_ref(),
        typescript.as_ref(),
        types.as_ref(),
    ];
    step("npm install", Path::new("npm"), &args, dir, &fresh).await?;
    let tsc = fresh.join("node_modules/typescript/bin/tsc");
    let version: [&OsStr; 2] = [tsc.as_os_str(), "--version".as_ref()];
    let ran = step("tsc --version", Path::new("node"), &version, dir, &fresh).await?;
    if !ran.stdout.contains(TYPESCRIPT_VERSION) {
        return Err(abandon(&fresh, "tsc --version", &ran.tail()));
    }
    finish(&fresh, &target, &pins)
}

async fn install_python(dir: &Path) -> Result<(), CheckError> {
    let pins = format!("pyflakes=={PYFLAKES_VERSION} mypy=={MYPY_VERSION}\n");
    let target = dir.join("python");
    if installed(&target, &pins) {
        return Ok(());
    }
    let fresh = fresh_dir(dir, "python")?;
    let venv: [&OsStr; 3] = ["-m".as_ref(), "venv".as_ref(), fresh.as_os_str()];
    step("python3 -m venv", Path::new("python3"), &venv, dir, &fresh).await?;
    let pyflakes = format!("pyflakes=={PYFLAKES_VERSION}");
    let mypy = format!("mypy=={MYPY_VERSION}");
    let pip: [&OsStr; 8] = [
        "-m".as_ref(),
        "pip".as_ref(),
        "install".as_ref(),
        "--disable-pip-version-check".as_ref(),
        "--no-input".as_ref(),
        "--quiet".as_ref(),
        pyflakes.as_ref(),
        mypy.as_ref(),
    ];
    let python = fresh.join("bin/python");
    step("pip install", &python, &pip, dir, &fresh).await?;
    let version: [&OsStr; 3] = ["-m".as_ref(), "mypy".as_ref(), "--version".as_ref()];
    let ran = step("mypy --version", &python, &version, dir, &fresh).await?;
    if !ran.stdout.contains(MYPY_VERSION) {
        return Err(abandon(&fresh, "mypy --version", &ran.tail()));
    }
    finish(&fresh, &target, &pins)
}

/// Rust installs nothing: the checker needs `cargo` on PATH.
async fn check_cargo() -> Result<(), CheckError> {
    let args: [&OsStr; 1] = ["--version".as_ref()];
    match run(
        Path::new("cargo"),
        &args,
        &std::env::temp_dir(),
        &[],
        INSTALL_TIMEOUT,
    )
    .await
    {
        Ok(ran) if ran.success() => Ok(()),
        Ok(ran) => Err(install_error("cargo", &ran.tail())),
        Err(failure) => Err(install_error("cargo", &format!("{failure:?}"))),
    }
}

/// Whether `target` holds a complete install of exactly `pins`.
fn installed(target: &Path, pins: &str) -> bool {
    std::fs::read_to_string(target.join(MARKER)).is_ok_and(|m| m == pins)
}

/// A new empty folder in `dir` for one install attempt (named so no other attempt, in this
/// process or another, picks the same).
fn fresh_dir(dir: &Path, name: &str) -> Result<PathBuf, CheckError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let fresh = dir.join(format!(".{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&fresh).map_err(|e| install_error(name, &e.to_string()))?;
    Ok(fresh)
}

/// Runs one install step; a failure removes the attempt's folder.
async fn step(
    tool: &str,
    program: &Path,
    args: &[&OsStr],
    cwd: &Path,
    fresh: &Path,
) -> Result<Ran, CheckError> {
    let ran = run(program, args, cwd, &[], INSTALL_TIMEOUT)
        .await
        .map_err(|failure| abandon(fresh, tool, &format!("{failure:?}")))?;
    if ran.success() {
        Ok(ran)
    } else {
        Err(abandon(fresh, tool, &ran.tail()))
    }
}

/// Marks the attempt complete and moves it into place, over an older install. When another
/// process got there first with the same pins, its install stays and this one is dropped.
fn finish(fresh: &Path, target: &Path, pins: &str) -> Result<(), CheckError> {
    let tool = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(fresh.join(MARKER), pins).map_err(|e| abandon(fresh, &tool, &e.to_string()))?;
    if target.exists() && !installed(target, pins) {
        // An install of other versions (or a broken one): set it aside, then remove it.
        let old = target.with_extension(format!("old-{}", std::process::id()));
        if std::fs::rename(target, &old).is_ok() {
            let _ = std::fs::remove_dir_all(&old);
        }
    }
    match std::fs::rename(fresh, target) {
        Ok(()) => Ok(()),
        Err(_) if installed(target, pins) => {
            let _ = std::fs::remove_dir_all(fresh);
            Ok(())
        }
        Err(e) => Err(abandon(fresh, &tool, &e.to_string())),
    }
}

/// Removes a failed attempt's folder and says what failed.
fn abandon(fresh: &Path, tool: &str, detail: &str) -> CheckError {
    let _ = std::fs::remove_dir_all(fresh);
    install_error(tool, detail)
}

fn install_error(tool: &str, detail: &str) -> CheckError {
    CheckError::Install {
        tool: tool.to_owned(),
        detail: detail.to_owned(),
    }
}
