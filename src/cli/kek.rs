//! Where `aura serve` gets the cluster's key-encryption key, which seals
//! every tenant's signing key (docs/identity.md). It never comes from the
//! replicated log: from a file only its owner can read, from an
//! environment variable, or from a command's output (a KMS or a secret
//! manager's CLI). Every member of a cluster needs the same key material.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use aura_engine::identity::{Kek, sealed::MIN_KEK_BYTES};

/// The environment variable that may hold the key material itself.
pub const ENV: &str = "AURA_KEK";

/// The name of the KEK file a one-node default creates in its data dir.
pub const DEFAULT_FILE: &str = "kek";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    File(PathBuf),
    Command(String),
    Env,
    /// The one-node default: a file in the data dir, created on first
    /// start. It sits beside what it protects, so `aura serve` says so.
    Beside(PathBuf),
}

impl KekSource {
    /// The source the options name. At most one may be named; with none, a
    /// one-node default keeps a KEK in its data dir and a cluster member
    /// refuses to start (its peers must share the key).
    pub fn choose(
        file: Option<&Path>,
        command: Option<&str>,
        env: Option<&str>,
        data_dir: &Path,
        in_cluster: bool,
    ) -> anyhow::Result<KekSource> {
        let named = [file.is_some(), command.is_some(), env.is_some()];
        if named.iter().filter(|n| **n).count() > 1 {
            bail!("name one KEK source: --kek-file, --kek-command or {ENV}, not several");
        }
        Ok(match (file, command, env) {
            (Some(f), _, _) => KekSource::File(f.to_owned()),
            (_, Some(c), _) => KekSource::Command(c.to_owned()),
            (_, _, Some(_)) => KekSource::Env,
            _ if in_cluster => bail!(
                "a key-encryption key is required with --peer or --join: every member needs the same one \
                 (--kek-file, --kek-command or {ENV}; docs/identity.md)"
            ),
            _ => KekSource::Beside(data_dir.join(DEFAULT_FILE)),
        })
    }

    /// Reads the key. `env` is the variable's value, read by the caller.
    pub fn load(&self, env: Option<&str>) -> anyhow::Result<Kek> {
        let (material, from) = match self {
            KekSource::File(path) => (read_private(path)?, format!("KEK file {}", path.display())),
            KekSource::Beside(path) => {
                let material = if path.exists() {
                    read_private(path)?
                } else {
                    aura_raft::auth::create_secret_file(path)
                        .with_context(|| format!("cannot create the KEK file {}", path.display()))?
                };
                tracing::warn!(
                    file = %path.display(),
                    "the key-encryption key is kept in the data dir, beside the tenant keys it \
                     seals: anyone who copies the whole dir can open them; give it from \
                     elsewhere with --kek-file, --kek-command or {ENV} (docs/identity.md)"
                );
                (material, format!("KEK file {}", path.display()))
            }
            KekSource::Env => (
                env.unwrap_or_default().as_bytes().to_vec(),
                format!("the environment variable {ENV}"),
            ),
            KekSource::Command(cmd) => (run(cmd)?, format!("the output of `{cmd}`")),
        };
        Kek::from_material(material.trim_ascii()).with_context(|| {
            format!(
                "{from} holds too little key material: at least {MIN_KEK_BYTES} bytes are required"
            )
        })
    }
}

/// A KEK file's bytes, if nobody but its owner can read it.
fn read_private(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the KEK file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the KEK file {} can be read by others (mode {mode:o}): `chmod 600` it",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read the KEK file {}", path.display()))
}

/// The standard output of `sh -c cmd`, which must succeed.
fn run(cmd: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run the KEK command `{cmd}`"))?;
    if !out.status.success() {
        bail!(
            "the KEK command `{cmd}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_at_most_and_a_cluster_names_one() {
        let dir = Path::new("/data");
        let f = Some(Path::new("/k"));
        assert!(KekSource::choose(f, Some("echo"), None, dir, false).is_err());
        assert!(KekSource::choose(None, None, Some("x"), dir, false).is_ok());
        assert_eq!(
            KekSource::choose(None, None, None, dir, false).unwrap(),
            KekSource::Beside(dir.join("kek"))
        );
        let err = KekSource::choose(None, None, None, dir, true).unwrap_err();
        assert!(err.to_string().contains("required with --peer or --join"));
    }

    #[test]
    fn each_source_gives_the_same_key_for_the_same_material() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let material = "k".repeat(40);
        let file = dir.path().join("kek");
        std::fs::write(&file, format!("{material}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KekSource::File(file.clone()).load(None).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let id = KekSource::File(file).load(None).unwrap().id();
        assert_eq!(KekSource::Env.load(Some(&material)).unwrap().id(), id);
        let cmd = KekSource::Command(format!("echo {material}"));
        assert_eq!(cmd.load(None).unwrap().id(), id);
        assert!(KekSource::Env.load(Some("short")).is_err());
        let failing = KekSource::Command("echo nope >&2; exit 3".into());
        let err = failing.load(None).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        // The one-node default creates its file once, private, and keeps it.
        let beside = KekSource::Beside(dir.path().join("new-kek"));
        let first = beside.load(None).unwrap().id();
        let mode = std::fs::metadata(dir.path().join("new-kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(beside.load(None).unwrap().id(), first);
    }
}
