//! Giving a folder a spare CLI's box has bound (`spare`) the place and the contents of a plan's
//! folder, on the worker's disk, by renames only: the box follows the folder, not its name.
//!
//! The plan's folder is first renamed aside, to `.<name>~baton-handover` beside it (a name no
//! document can give a workspace: `~` is not in the workspace grammar), the spare's folder is
//! renamed into its place, then the entries set aside are moved in one by one. A crash or an
//! error part-way leaves entries aside, never lost: [`finish`] moves them in, and the worker
//! calls it for the workspace before every task ([`crate::workspace::prepare`]) and every
//! attempt (`attempt::try_once`). (A session folder's entries left aside are only a first
//! session's, nothing committed: a worker's start removes them.) Depends on nothing else of the
//! worker.

use std::path::{Path, PathBuf};

/// A hand-over that did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandOverError {
    /// Nothing changed: the plan's folder is as it was, the spare's is still the spare's.
    #[error("the folders were left as they were: {0}")]
    Untouched(#[source] std::io::Error),
    /// Some of the plan's entries are still aside ([`finish`] moves them in): the spare's
    /// folder is the plan's now, or (when putting the plan's folder back failed too) the plan's
    /// folder is missing and every entry is aside.
    #[error("part of {aside} is not moved in yet")]
    Partial {
        aside: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where `to`'s entries wait during a hand-over.
fn aside_of(to: &Path) -> Option<PathBuf> {
    let name = to.file_name()?.to_string_lossy();
    Some(to.with_file_name(format!(".{name}~baton-handover")))
}

/// Makes `spare` the folder at `to`, with whatever `to` held moved into it.
pub(crate) fn hand_over(spare: &Path, to: &Path) -> Result<(), HandOverError> {
    let untouched = HandOverError::Untouched;
    let aside = aside_of(to).ok_or_else(|| untouched(std::io::Error::other("no folder name")))?;
    let parent = to.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(untouched)?;
    // An earlier hand-over left entries aside: they go in first.
    finish(to).map_err(untouched)?;
    let had = match std::fs::rename(to, &aside) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(untouched(e)),
    };
    if let Err(e) = std::fs::rename(spare, to) {
        if had {
            std::fs::rename(&aside, to).map_err(|source| HandOverError::Partial {
                aside: aside.clone(),
                source,
            })?;
        }
        return Err(untouched(e));
    }
    if had {
        finish(to).map_err(|source| HandOverError::Partial { aside, source })?;
    }
    Ok(())
}

/// Moves in what an interrupted hand-over left aside of `to` (when `to` exists; an entry `to`
/// already has is left aside, with an error). Only a real folder is taken for the aside: the
/// parent of a nested workspace may be an older plan's folder, whose box could have left a link
/// there by that name, and following it would move another folder's files into this one.
pub(crate) fn finish(to: &Path) -> std::io::Result<()> {
    let Some(aside) = aside_of(to) else {
        return Ok(());
    };
    match std::fs::symlink_metadata(&aside) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is not a folder the worker made (a link, or a file): it is left alone",
                aside.display()
            )))
        }
        Err(_) => return Ok(()),
    }
    if !std::fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_dir()) {
        return Ok(());
    }
    let entries = std::fs::read_dir(&aside)?;
    for entry in entries {
        let entry = entry?;
        let into = to.join(entry.file_name());
        if std::fs::symlink_metadata(&into).is_ok() {
            return Err(std::io::Error::other(format!(
                "{} is in both {} and {}",
                entry.file_name().to_string_lossy(),
                aside.display(),
                to.display()
            )));
        }
        std::fs::rename(entry.path(), into)?;
    }
    std::fs::remove_dir(&aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-handover-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_spare_folder_takes_the_plan_folder_place_and_contents() {
        let r = root();
        let (spare, plan) = (r.join("spare"), r.join("ws/plan"));
        std::fs::create_dir_all(plan.join("src")).unwrap();
        std::fs::write(plan.join("src/a.rs"), "a").unwrap();
        std::fs::create_dir_all(&spare).unwrap();
        std::fs::write(spare.join("marker"), "spare").unwrap();
        hand_over(&spare, &plan).unwrap();
        assert!(!spare.exists());
        assert_eq!(std::fs::read_to_string(plan.join("src/a.rs")).unwrap(), "a");
        assert_eq!(
            std::fs::read_to_string(plan.join("marker")).unwrap(),
            "spare"
        );
        assert!(!aside_of(&plan).unwrap().exists());
        // A plan folder that does not exist yet is simply the spare's.
        let (spare2, fresh) = (r.join("spare2"), r.join("ws/fresh"));
        std::fs::create_dir_all(&spare2).unwrap();
        hand_over(&spare2, &fresh).unwrap();
        assert!(fresh.is_dir() && !spare2.exists());
        // A spare folder that is gone changes nothing.
        let gone = hand_over(&r.join("gone"), &plan);
        assert!(matches!(gone, Err(HandOverError::Untouched(_))), "{gone:?}");
        assert!(plan.join("src/a.rs").is_file());
        let _ = std::fs::remove_dir_all(r);
    }

    /// A hand-over cut short (a crash between the renames, or part-way through the moves)
    /// leaves the plan's entries aside; the next `finish` moves them in.
    #[test]
    fn what_an_interrupted_hand_over_left_aside_is_moved_in() {
        let r = root();
        let plan = r.join("plan");
        let aside = aside_of(&plan).unwrap();
        std::fs::create_dir_all(aside.join("src")).unwrap();
        std::fs::write(aside.join("src/a.rs"), "a").unwrap();
        std::fs::write(aside.join("README"), "r").unwrap();
        // The plan's folder is missing (the crash came between the renames): nothing yet.
        finish(&plan).unwrap();
        assert!(aside.exists());
        std::fs::create_dir_all(&plan).unwrap();
        finish(&plan).unwrap();
        assert_eq!(std::fs::read_to_string(plan.join("src/a.rs")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(plan.join("README")).unwrap(), "r");
        assert!(!aside.exists());
        // An entry in both places stays aside, named.
        std::fs::create_dir_all(&aside).unwrap();
        std::fs::write(aside.join("README"), "other").unwrap();
        let both = finish(&plan).unwrap_err().to_string();
        assert!(both.contains("README"), "{both}");
        assert_eq!(std::fs::read_to_string(plan.join("README")).unwrap(), "r");
        let _ = std::fs::remove_dir_all(r);
    }

    /// A link where the aside would be (left by an older plan's box in the folder a nested
    /// workspace lives in) is never followed: the folder it points to keeps its files.
    #[test]
    fn a_link_in_the_asides_place_is_never_followed() {
        let r = root();
        let (victim, plan) = (r.join("victim"), r.join("evil/x"));
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("secret"), "s").unwrap();
        std::fs::create_dir_all(&plan).unwrap();
        std::os::unix::fs::symlink("../victim", aside_of(&plan).unwrap()).unwrap();
        assert!(finish(&plan).is_err());
        let spare = r.join("spare");
        std::fs::create_dir_all(&spare).unwrap();
        assert!(hand_over(&spare, &plan).is_err());
        assert_eq!(std::fs::read_to_string(victim.join("secret")).unwrap(), "s");
        assert!(!plan.join("secret").exists());
        let _ = std::fs::remove_dir_all(r);
    }
}
