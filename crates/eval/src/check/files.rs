//! The project's files a tool is given: found by walking a folder, as paths from the project's
//! root with `/` between parts, sorted, so every run names them in the same order.

use std::path::Path;

/// Folders never walked: hidden ones (`.git`, `.venv`), and what tools and installs leave.
const SKIPPED: &[&str] = &["node_modules", "__pycache__", "target"];

/// The files under `root/sub` (`sub` empty: the whole project) whose name `wanted` accepts.
/// A folder that does not exist has none.
pub(super) fn under(root: &Path, sub: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    walk(root, &root.join(sub), &wanted, &mut found, 0);
    found.sort();
    found
}

fn walk(
    root: &Path,
    dir: &Path,
    wanted: &dyn Fn(&str) -> bool,
    found: &mut Vec<String>,
    depth: usize,
) {
    // A project is small; a deeper tree is a link loop or a stray install.
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
                walk(root, &path, wanted, found, depth + 1);
            }
        } else if kind.is_file() && wanted(&name) {
            if let Some(relative) = relative(root, &path) {
                found.push(relative);
            }
        }
    }
}

/// `path` from `root`, with `/` between parts.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rest
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_wanted_files_sorted_and_skips_tool_folders() {
        let root = std::env::temp_dir().join(format!("baton-eval-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in [
            "b.py",
            "a/c.py",
            "a/d.txt",
            "__pycache__/e.py",
            ".venv/f.py",
            "node_modules/g.py",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let py = under(&root, "", |n| n.ends_with(".py"));
        assert_eq!(py, ["a/c.py", "b.py"]);
        assert_eq!(under(&root, "a", |_| true), ["a/c.py", "a/d.txt"]);
        assert!(under(&root, "missing", |_| true).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
