//! evcxr build slots: the folders evcxr compiles notebook code in, kept between runs so that a
//! restarted kernel, a second notebook or a later `revmod run` reuses the compiled support crate.
//!
//! Layout: `ROOT/slot-N/` (ROOT is [`super::exec::default_build_root`]), each with
//! - `.revmod-lock`: held (exclusive, non-blocking) by the one live session using the slot, so two
//!   notebooks never share evcxr's build folder;
//! - `.revmod-warm`: written when a session in this slot ends, or by the kernel once `init.evcxr`
//!   has built the support crate, so the slot's `target/` holds no build in progress from then on
//!   (a busy kernel slot compiles only cells) and may be copied;
//! - `target/`, `Cargo.lock`, `src/`: evcxr's own build files.
//!
//! Before the support crate loads in a slot that is not warm, the session takes `ROOT/.revmod-build`
//! (a blocking lock: one cold build at a time, so two kernels started together on an empty cache do
//! not both compile polars on the same cores), then seeds the slot, if it has no `target/`, with a
//! copy of a warm slot's (preferring an idle one, whose lock is held for the copy). Cargo then finds
//! the dependencies fresh: its fingerprints hold paths relative to the target folder, and all slots
//! are siblings, so the support crate is at the same relative path. A slot that was never warm is
//! never copied: it may be mid-build.

use anyhow::{anyhow, Context, Result};
use revmod::output::{try_lock, FileLock};
use std::path::{Path, PathBuf};
use std::time::Instant;

const LOCK: &str = ".revmod-lock";
const WARM: &str = ".revmod-warm";
const BUILD: &str = ".revmod-build";
/// How many slots (live sessions at once) a build root offers.
const MAX_SLOTS: usize = 64;

/// One build slot, locked for this process until dropped.
pub struct Slot {
    /// The slot folder (evcxr's `EVCXR_TMPDIR`).
    pub dir: PathBuf,
    root: PathBuf,
    /// The slot had no `target/` when it was taken (evcxr creates one as soon as it starts, so this
    /// is decided here, before that).
    fresh: bool,
    _lock: FileLock,
}

/// Held while the support crate is built cold in one slot (see the module doc); released when dropped.
pub struct BuildGuard(#[allow(dead_code)] std::fs::File);

impl Slot {
    /// Records that the support crate finished loading here, so other sessions may copy this slot.
    pub fn mark_warm(&self) -> Result<()> {
        let p = self.dir.join(WARM);
        std::fs::write(&p, b"").with_context(|| format!("writing {}", p.display()))
    }

    /// True when the support crate has loaded in this slot before (a warm start).
    pub fn is_warm(&self) -> bool {
        self.dir.join(WARM).exists()
    }

    /// Gets a slot that is not warm ready for its first load: waits for the build lock (calling
    /// `say` once when another session holds it), then seeds the slot from a warm one if it has no
    /// `target/` yet. Returns `None` for a warm slot (nothing to wait for), else the guard to keep
    /// until the load ended.
    pub fn prepare(&self, mut say: impl FnMut(&str)) -> Result<Option<BuildGuard>> {
        if self.is_warm() {
            return Ok(None);
        }
        let path = self.root.join(BUILD);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                say("another session is building the support crate in this build cache; waiting for it, then starting from a copy of its build");
                f.lock().with_context(|| format!("locking {}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())))
            }
        }
        if self.fresh {
            if let Some(note) = seed(&self.root, &self.dir) {
                say(&note);
            }
        }
        Ok(Some(BuildGuard(f)))
    }
}

/// Takes the first free slot under `root` (creating it). Fails only when all [`MAX_SLOTS`] are in
/// use or `root` cannot be created. Call [`Slot::prepare`] before loading the support crate.
pub fn take(root: &Path) -> Result<Slot> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    for n in 0..MAX_SLOTS {
        let dir = root.join(format!("slot-{n}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(lock) = try_lock(&dir.join(LOCK))? {
            let fresh = !dir.join("target").exists();
            return Ok(Slot { dir, root: root.to_owned(), fresh, _lock: lock });
        }
    }
    Err(anyhow!("all {MAX_SLOTS} evcxr build slots under {} are in use", root.display()))
}

/// Warm slots other than `dir`, idle ones (their lock taken, returned with it) first: an idle slot
/// is copied with no build running in it; a busy one only when no idle one is warm. A busy warm
/// slot normally compiles only cells, not dependencies; if its session rebuilds a dependency during
/// the copy (a changed `:dep`), the copy can hold a half-written artifact: deleting the new slot
/// folder makes the next start copy or build it again.
fn warm_sources(root: &Path, dir: &Path) -> Vec<(PathBuf, Option<FileLock>)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut warm: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != dir && p.join(WARM).is_file() && p.join("target").is_dir() && p.join("Cargo.lock").is_file())
        .collect();
    warm.sort();
    let mut idle = Vec::new();
    let mut busy = Vec::new();
    for p in warm {
        match try_lock(&p.join(LOCK)) {
            Ok(Some(l)) => idle.push((p, Some(l))),
            _ => busy.push((p, None)),
        }
    }
    idle.extend(busy);
    idle
}

/// Copies a warm slot's `target/` and `Cargo.lock` into the fresh slot `dir` (through a temporary
/// folder renamed at the end, so a crash leaves no half copy). Best effort: on failure the slot
/// starts empty and evcxr compiles the support crate there. Returns a note for the log.
fn seed(root: &Path, dir: &Path) -> Option<String> {
    // The first source is used (its lock, if idle, held for the copy); the others' locks are released here.
    let (src, _src_lock) = warm_sources(root, dir).into_iter().next()?;
    let tmp = dir.join("target.seeding");
    let _ = std::fs::remove_dir_all(&tmp);
    let t = Instant::now();
    let copied = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(src.join("target"))
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success())
        && std::fs::copy(src.join("Cargo.lock"), dir.join("Cargo.lock")).is_ok()
        && replace_dir(&tmp, &dir.join("target"));
    if copied {
        Some(format!(
            "seeded build folder {} from {} in {:.1} s",
            dir.display(),
            src.display(),
            t.elapsed().as_secs_f64()
        ))
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
        Some(format!("could not seed {} from {}; compiling the support crate there", dir.display(), src.display()))
    }
}

/// Renames `from` over `to`, removing what evcxr may already have created at `to` (an empty build).
fn replace_dir(from: &Path, to: &Path) -> bool {
    if to.exists() {
        let old = to.with_extension("replaced");
        let _ = std::fs::remove_dir_all(&old);
        if std::fs::rename(to, &old).is_err() {
            return false;
        }
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(from, to).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("revmod-slots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        r
    }

    fn fake_build(slot: &Slot, payload: &str) {
        std::fs::create_dir_all(slot.dir.join("target/release")).unwrap();
        std::fs::write(slot.dir.join("target/release/lib.rlib"), payload).unwrap();
        std::fs::write(slot.dir.join("Cargo.lock"), "lock").unwrap();
    }

    #[test]
    fn live_sessions_get_distinct_slots() {
        let r = root("distinct");
        let a = take(&r).unwrap();
        let b = take(&r).unwrap();
        assert_ne!(a.dir, b.dir);
        let a_dir = a.dir.clone();
        drop(a);
        // A child process that another test thread spawns (`cp` in `seed`, cargo, rustc) holds a copy
        // of every open descriptor between its fork and its exec, and with it `a`'s lock, for a moment
        // after `drop(a)`: CI saw slot-2 here once. Such a copy is gone within milliseconds; a slot
        // that stays locked after its session ended would fail every try.
        let mut again = take(&r).unwrap();
        for _ in 0..50 {
            if again.dir == a_dir {
                break;
            }
            drop(again);
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = take(&r).unwrap();
        }
        assert_eq!(again.dir, a_dir, "a released slot is taken again first");
    }

    #[test]
    fn only_warm_slots_are_copied() {
        let r = root("warm");
        let a = take(&r).unwrap();
        fake_build(&a, "half built");
        // `a` is mid-build (not warm): a second session must not copy it.
        let b = take(&r).unwrap();
        let mut said = Vec::new();
        let guard = b.prepare(|s| said.push(s.to_owned())).unwrap();
        assert!(guard.is_some() && said.is_empty(), "{said:?}");
        assert!(!b.dir.join("target").exists());
        drop(guard);
        drop(b);
        std::fs::remove_dir_all(r.join("slot-1")).unwrap();
        a.mark_warm().unwrap();
        assert!(a.is_warm());
        assert!(a.prepare(|_| {}).unwrap().is_none(), "a warm slot needs no build lock");
        // Now warm (and still busy): the fallback copies it, also over the empty build evcxr creates
        // as soon as it starts (after `take`, before `prepare`).
        let c = take(&r).unwrap();
        std::fs::create_dir_all(c.dir.join("target/debug")).unwrap();
        let _g = c.prepare(|s| said.push(s.to_owned())).unwrap();
        assert!(said.len() == 1 && said[0].starts_with("seeded"), "{said:?}");
        assert_eq!(std::fs::read_to_string(c.dir.join("target/release/lib.rlib")).unwrap(), "half built");
        assert!(!c.is_warm(), "the copy becomes warm only once the crate loads there");
        assert!(!c.dir.join("target.seeding").exists());
    }

    #[test]
    fn one_cold_build_at_a_time() {
        let r = root("build");
        let a = take(&r).unwrap();
        let guard = a.prepare(|_| {}).unwrap().expect("cold: build lock");
        let b_root = r.clone();
        let waited = std::thread::spawn(move || {
            let b = take(&b_root).unwrap();
            let mut said = Vec::new();
            let _g = b.prepare(|s| said.push(s.to_owned())).unwrap();
            (said, std::fs::read_to_string(b.dir.join("target/release/lib.rlib")).ok())
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        fake_build(&a, "built");
        a.mark_warm().unwrap();
        drop(guard);
        let (said, copied) = waited.join().unwrap();
        assert!(said[0].starts_with("another session is building"), "{said:?}");
        assert!(said[1].starts_with("seeded"), "{said:?}");
        assert_eq!(copied.as_deref(), Some("built"), "the waiting session starts from the finished build");
    }

    #[test]
    fn idle_warm_slots_are_preferred() {
        let r = root("idle");
        let a = take(&r).unwrap();
        let b = take(&r).unwrap();
        fake_build(&a, "busy");
        fake_build(&b, "idle");
        a.mark_warm().unwrap();
        b.mark_warm().unwrap();
        drop(b);
        // slot-0 is busy, slot-1 idle: slot-1 comes first, with its lock held for the copy.
        let srcs = warm_sources(&r, &r.join("slot-2"));
        assert_eq!(srcs.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), vec![r.join("slot-1"), r.join("slot-0")]);
        assert!(srcs[0].1.is_some() && srcs[1].1.is_none());
        drop(srcs);
        std::fs::create_dir_all(r.join("slot-2")).unwrap();
        assert!(seed(&r, &r.join("slot-2")).unwrap().starts_with("seeded"));
        assert_eq!(std::fs::read_to_string(r.join("slot-2/target/release/lib.rlib")).unwrap(), "idle");
        drop(a);
    }
}
