//! A bounded directory walk shared by the contents scanner and dependency discovery:
//! iterative (no recursion to blow the stack), never follows symlinks (a package must not
//! make the scanner read outside itself), capped in depth and entries, in a deterministic
//! order (sorted within each directory).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    pub max_depth: usize,
    pub max_entries: usize,
    /// Directory names reported but not entered (VCS internals).
    pub skip_dirs: &'static [&'static str],
}

impl Default for WalkLimits {
    fn default() -> Self {
        WalkLimits {
            max_depth: 64,
            max_entries: 500_000,
            skip_dirs: &[".git", ".hg", ".svn"],
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// Relative to the walk root, `/`-separated.
    pub rel: String,
    pub is_dir: bool,
    pub size: u64,
}

pub struct Walk {
    stack: Vec<(PathBuf, String, usize)>,
    pending: Vec<Entry>,
    limits: WalkLimits,
    seen: usize,
    /// Set when a limit stopped the walk early.
    pub truncated: bool,
    /// Directories that could not be read.
    pub unreadable: usize,
}

impl Walk {
    pub fn new(root: &Path, limits: WalkLimits) -> Walk {
        Walk {
            stack: vec![(root.to_path_buf(), String::new(), 0)],
            pending: Vec::new(),
            limits,
            seen: 0,
            truncated: false,
            unreadable: 0,
        }
    }

    fn expand(&mut self, dir: PathBuf, rel: String, depth: usize) {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            self.unreadable += 1;
            return;
        };
        let mut entries: Vec<Entry> = Vec::new();
        for e in rd.flatten() {
            // symlink_metadata: a link is neither followed nor reported as what it targets.
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.file_type().is_symlink() || !(meta.is_dir() || meta.is_file()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            entries.push(Entry {
                path: e.path(),
                rel: child_rel,
                is_dir: meta.is_dir(),
                size: meta.len(),
            });
        }
        // Reverse order on the pending stack so they come out sorted.
        entries.sort_by(|a, b| b.rel.cmp(&a.rel));
        for e in &entries {
            let name = e.rel.rsplit('/').next().unwrap_or("");
            if e.is_dir && !self.limits.skip_dirs.contains(&name) {
                if depth + 1 < self.limits.max_depth {
                    self.stack.push((e.path.clone(), e.rel.clone(), depth + 1));
                } else {
                    self.truncated = true;
                }
            }
        }
        self.pending.extend(entries);
    }
}

impl Iterator for Walk {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            if self.seen >= self.limits.max_entries {
                if !self.pending.is_empty() || !self.stack.is_empty() {
                    self.truncated = true;
                }
                return None;
            }
            if let Some(e) = self.pending.pop() {
                self.seen += 1;
                return Some(e);
            }
            let (dir, rel, depth) = self.stack.pop()?;
            self.expand(dir, rel, depth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_without_following_links_and_stops_at_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/deep.txt"), "x").unwrap();
        std::fs::write(root.join("z.txt"), "x").unwrap();
        std::fs::write(root.join("a/one.txt"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let mut files: Vec<String> = Walk::new(root, WalkLimits::default())
            .filter(|e| !e.is_dir)
            .map(|e| e.rel)
            .collect();
        files.sort();
        assert_eq!(
            files,
            ["a/b/c/deep.txt", "a/one.txt", "z.txt"].map(String::from)
        );

        let mut shallow = Walk::new(
            root,
            WalkLimits {
                max_depth: 2,
                ..WalkLimits::default()
            },
        );
        let got: Vec<String> = shallow.by_ref().map(|e| e.rel).collect();
        assert!(!got.iter().any(|r| r.contains("deep")));
        assert!(shallow.truncated);

        let mut few = Walk::new(
            root,
            WalkLimits {
                max_entries: 2,
                ..WalkLimits::default()
            },
        );
        assert_eq!(few.by_ref().count(), 2);
        assert!(few.truncated);
    }
}
