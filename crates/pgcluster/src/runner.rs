//! Finding the PostgreSQL binaries and running them, as the `postgres` user when we are root.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Gid, Uid, User};

use crate::ClusterError;

/// Where distribution packages put the versioned server binaries.
const PG_LIB_DIR: &str = "/usr/lib/postgresql";
/// The tools a directory must hold to count as a server bin dir.
const SERVER_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Runs the tools of one bin dir, switching to the `postgres` user when we are root.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) bin_dir: PathBuf,
    /// `Some` when we are root: the uid/gid of `postgres`, whom every server tool runs as.
    pub(crate) as_postgres: Option<(Uid, Gid)>,
}

impl Runner {
    /// Locates the binaries and decides whom to run them as.
    pub(crate) fn detect() -> Result<Self, ClusterError> {
        let bin_dir = find_bin_dir()?;
        let as_postgres = if nix::unistd::geteuid().is_root() {
            match User::from_name("postgres") {
                Ok(Some(user)) => Some((user.uid, user.gid)),
                Ok(None) | Err(_) => return Err(ClusterError::NoPostgresUser),
            }
        } else {
            None
        };
        Ok(Self {
            bin_dir,
            as_postgres,
        })
    }

    /// The argument vector that runs `tool` from the bin dir (behind `runuser` when root).
    pub(crate) fn argv(&self, tool: &str) -> Vec<OsString> {
        let path = self.bin_dir.join(tool).into_os_string();
        match self.as_postgres {
            Some(_) => vec![
                runuser().into(),
                "-u".into(),
                "postgres".into(),
                "--".into(),
                path,
            ],
            None => vec![path],
        }
    }

    /// A command for `tool`, run from `/` (the caller's directory may be unreadable for
    /// `postgres`) with stdin closed and libpq environment overrides removed.
    pub(crate) fn command(&self, tool: &str) -> Command {
        command_from(&self.argv(tool))
    }

    /// Runs `sh -c script` as the server user, for access checks.
    pub(crate) fn shell_as_server_user(&self, script: &str, args: &[&OsStr]) -> Command {
        let mut argv: Vec<OsString> = match self.as_postgres {
            Some(_) => vec![
                runuser().into(),
                "-u".into(),
                "postgres".into(),
                "--".into(),
            ],
            None => Vec::new(),
        };
        argv.extend(["sh".into(), "-c".into(), script.into(), "sh".into()]);
        argv.extend(args.iter().map(|a| a.to_os_string()));
        command_from(&argv)
    }
}

fn command_from(argv: &[OsString]) -> Command {
    let (program, args) = match argv.split_first() {
        Some((program, args)) => (program.as_os_str(), args),
        None => (OsStr::new("true"), &[][..]),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .env_remove("PGDATA")
        .env_remove("PGPORT")
        .env_remove("PGHOST")
        .env_remove("PGUSER")
        .env_remove("PGDATABASE")
        .env_remove("PGOPTIONS");
    cmd
}

/// The `runuser` binary (util-linux), by absolute path when it is in a usual place.
fn runuser() -> &'static str {
    [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("runuser")
}

/// Runs `cmd` and returns its output, mapping "could not run at all" to `ClusterError::Spawn`.
pub(crate) fn run(cmd: &mut Command, program: &str) -> Result<Output, ClusterError> {
    cmd.output().map_err(|source| ClusterError::Spawn {
        program: program.to_owned(),
        source,
    })
}

/// Exit status, stdout and stderr of a finished command, as one readable text.
pub(crate) fn describe(output: &Output) -> String {
    let mut text = format!("({})", output.status);
    for stream in [&output.stdout, &output.stderr] {
        let s = String::from_utf8_lossy(stream);
        let s = s.trim();
        if !s.is_empty() {
            text.push('\n');
            text.push_str(s);
        }
    }
    text
}

/// `PG_BIN_DIR` when set, else the highest version under `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_server_tools(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::BadBinDir(dir))
        };
    }
    find_bin_dir_in(Path::new(PG_LIB_DIR)).ok_or(ClusterError::NoBinaries)
}

/// The `<version>/bin` under `root` with the highest version that holds the server tools.
pub(crate) fn find_bin_dir_in(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = version_key(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            has_server_tools(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else is not a version directory.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server_tools(dir: &Path) -> bool {
    SERVER_TOOLS.iter().all(|tool| dir.join(tool).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_key("10").unwrap() > version_key("9.6").unwrap());
        assert!(version_key("15").unwrap() > version_key("9").unwrap());
        assert_eq!(version_key("main"), None);
    }

    #[test]
    fn picks_highest_version_with_server_tools() {
        let root = std::env::temp_dir().join(format!(
            "whatpro-pgcluster-unit-{}-bins",
            std::process::id()
        ));
        for (version, complete) in [("9.6", true), ("13", true), ("16", false), ("x", true)] {
            let bin = root.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            let tools: &[&str] = if complete { &SERVER_TOOLS } else { &["initdb"] };
            for tool in tools {
                fs::write(bin.join(tool), b"").unwrap();
            }
        }
        let found = find_bin_dir_in(&root);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(root.join("13").join("bin")));
    }
}
