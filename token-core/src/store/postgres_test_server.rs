//! The PostgreSQL server of the tests: `TOKEN_TEST_POSTGRES_URL` when it is set, or else a
//! throwaway server this test binary starts itself and that stops when the binary exits.
//!
//! Compiled into token-core's unit tests and, by `#[path]`, into the workspace's `tests`
//! crate, so it uses `std` alone. The throwaway server: the first test that asks starts it
//! (once per test binary, shared by its tests) from the server binaries on `PATH` or in
//! `/usr/lib/postgresql/*/bin`, with `initdb` in a new temporary directory, on a free port
//! of 127.0.0.1 (its socket in that directory), as an unprivileged user when run as root
//! (`postgres`, or `nobody`). A watchdog process holds the read end of a pipe whose write end
//! only this process has: when the binary exits, however it exits (a panic, a signal,
//! `SIGKILL`), the pipe closes and the watchdog stops the server and removes the directory.
//!
//! Without a URL and without server binaries the tests skip, and a banner saying so (and how
//! to enable them) is printed once; where they must run (`TOKEN_TEST_REQUIRE_POSTGRES=1`,
//! or `CI=true`) they fail instead.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;

const URL_VAR: &str = "TOKEN_TEST_POSTGRES_URL";

/// The URL of the test database, or `None` when `test` should skip (the banner that says
/// why is printed once per binary). Panics where the tests must run and cannot.
pub fn test_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.is_empty()
    {
        return Some(url);
    }
    static SERVER: OnceLock<Result<Server, Unavailable>> = OnceLock::new();
    match SERVER.get_or_init(Server::start) {
        Ok(server) => Some(server.url.clone()),
        Err(Unavailable::Failed(why)) => {
            panic!("{test}: the throwaway PostgreSQL server did not start: {why}")
        }
        Err(Unavailable::NoBinaries) if required() => panic!(
            "{test}: PostgreSQL tests must run here (TOKEN_TEST_REQUIRE_POSTGRES={:?}, CI={:?}), \
             but {URL_VAR} is not set and there are no PostgreSQL server binaries to start one",
            std::env::var("TOKEN_TEST_REQUIRE_POSTGRES").ok(),
            std::env::var("CI").ok(),
        ),
        Err(Unavailable::NoBinaries) => None,
    }
}

fn required() -> bool {
    std::env::var("TOKEN_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1")
        || matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// Straight to stderr: the test harness captures `eprintln!` of passing tests.
fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

enum Unavailable {
    NoBinaries,
    Failed(String),
}

struct Server {
    url: String,
    _cluster: Cluster,
}

impl Server {
    fn start() -> Result<Self, Unavailable> {
        let bin = binaries()?;
        let cluster = Cluster::create(&bin).map_err(Unavailable::Failed)?;
        let port = cluster.start(None, false).map_err(Unavailable::Failed)?;
        say(&format!(
            "postgres: a throwaway server on 127.0.0.1:{port} ({}), stopped when this test \
             binary exits\n",
            cluster.dir.display()
        ));
        Ok(Self {
            url: format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
            _cluster: cluster,
        })
    }
}

/// The server binaries, or why there are none (after the banner, where the tests may skip).
fn binaries() -> Result<PathBuf, Unavailable> {
    server_binaries().ok_or_else(|| {
        if !required() {
            static BANNER: OnceLock<()> = OnceLock::new();
            BANNER.get_or_init(|| {
                say(&format!(
                    "\n=========================================================================\n\
                     PostgreSQL tests SKIPPED: {URL_VAR} is not set and no PostgreSQL server\n\
                     binaries (initdb, pg_ctl) are on PATH or in /usr/lib/postgresql/*/bin.\n\
                     To run them: install the server (Debian: apt-get install postgresql),\n\
                     or set {URL_VAR}=postgresql://user@host:port/db.\n\
                     =========================================================================\n\n"
                ))
            });
        }
        Unavailable::NoBinaries
    })
}

/// A throwaway server of one test's own, which the test may stop (as an administrator or a
/// crash would) and start again on the same port, its committed data kept; the shared server serves
/// every other test undisturbed. Removed when dropped, or when the test binary exits.
#[allow(dead_code)] // Not every crate that includes this file uses it.
pub struct PrivateServer {
    url: String,
    port: u16,
    cluster: Cluster,
}

#[allow(dead_code)]
impl PrivateServer {
    /// A new server, or `None` when `test` should skip: no server binaries here (even with
    /// `TOKEN_TEST_POSTGRES_URL` set: a server the tests did not start cannot be stopped).
    /// Panics where the tests must run and cannot.
    pub fn start(test: &str) -> Option<Self> {
        let bin = match binaries() {
            Ok(bin) => bin,
            Err(_) if required() => panic!(
                "{test}: PostgreSQL tests must run here (TOKEN_TEST_REQUIRE_POSTGRES={:?}, \
                 CI={:?}), but there are no PostgreSQL server binaries to start a server of \
                 its own",
                std::env::var("TOKEN_TEST_REQUIRE_POSTGRES").ok(),
                std::env::var("CI").ok(),
            ),
            Err(_) => return None,
        };
        let started = Cluster::create(&bin).and_then(|cluster| {
            let port = cluster.start(None, true)?;
            Ok(Self {
                url: format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
                port,
                cluster,
            })
        });
        Some(started.unwrap_or_else(|why| panic!("{test}: a server of its own: {why}")))
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops it and waits until it has (bounded): `fast` (clients are told, then
    /// disconnected) or `immediate` (every process killed, as in a crash).
    pub fn stop(&self, mode: &str) {
        self.cluster
            .stop(mode)
            .unwrap_or_else(|why| panic!("stopping the server ({mode}): {why}"));
    }

    /// Starts it again on the same port and waits until it accepts connections (bounded).
    pub fn restart(&self) {
        self.cluster
            .start(Some(self.port), true)
            .unwrap_or_else(|why| panic!("starting the server again: {why}"));
    }
}

#[allow(dead_code)]
impl PrivateServer {
    /// Pauses every process of the server (`SIGSTOP`: a VM or a container frozen, a host
    /// swapping hard): connections stay open, new ones are accepted by the kernel, and
    /// nothing answers until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("STOP")
            .unwrap_or_else(|why| panic!("pausing the server: {why}"));
    }

    /// Resumes a server [`pause`](Self::pause)d.
    pub fn resume(&self) {
        self.signal("CONT")
            .unwrap_or_else(|why| panic!("resuming the server: {why}"));
    }

    /// Sends `signal` to the postmaster first, then to its children (it forks none while
    /// stopped).
    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid_file = self.cluster.dir.join("data").join("postmaster.pid");
        let postmaster: u32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse().ok())
            .ok_or_else(|| format!("no postmaster pid in {}", pid_file.display()))?;
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // `pid (comm) state ppid ...`; the name may hold spaces and parentheses.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if parent == Some(postmaster) {
                children.push(pid);
            }
        }
        let kill = |pid: u32| {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !kill(postmaster) {
            return Err(format!("kill -{signal} {postmaster} failed"));
        }
        // A child may have exited since it was listed.
        for pid in children {
            kill(pid);
        }
        Ok(())
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // A paused server does not stop.
        let _ = self.signal("CONT");
        let _ = self.cluster.stop("immediate");
    }
}

/// A database cluster in a new temporary directory, stopped and removed when this process
/// exits.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    owner: Owner,
    /// The write end of the watchdog's pipe, never written: it closes when this process
    /// exits, and that stops the server.
    _lifeline: ChildStdin,
}

impl Cluster {
    fn create(bin: &Path) -> Result<Self, String> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let owner = Owner::for_this_process()?;
        let dir = std::env::temp_dir().join(format!(
            "token-test-pg-{}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let socket = dir.join("socket");
        std::fs::create_dir_all(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
        owner.take(&dir)?;
        owner.take(&socket)?;

        // The watchdog first, so that whatever happens next, the directory goes with us.
        let lifeline = watchdog(bin, &dir, &owner)?;

        let initdb = owner
            .command(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        Ok(Self {
            bin: bin.to_path_buf(),
            dir,
            owner,
            _lifeline: lifeline,
        })
    }

    /// Starts the server on `port`, or on a free port: one the OS just gave out; if the
    /// server still cannot bind it (taken in between), another. The port it listens on.
    /// Commits are durable across a crash of the server (its processes killed) only when
    /// `durable` (`synchronous_commit`; the machine does not crash, so `fsync` stays off).
    fn start(&self, port: Option<u16>, durable: bool) -> Result<u16, String> {
        let log = self.dir.join("server.log");
        for _attempt in 0..8 {
            let port = match port {
                Some(port) => port,
                None => std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(|e| format!("no free port: {e}"))?
                    .port(),
            };
            let options = format!(
                "-p {port} -h 127.0.0.1 -k {} -c max_connections=300 -c fsync=off \
                 -c synchronous_commit={} -c full_page_writes=off",
                self.dir.join("socket").display(),
                if durable { "on" } else { "off" },
            );
            let started = self
                .owner
                .command(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .status()
                .map_err(|e| format!("pg_ctl: {e}"))?;
            if started.success() {
                return Ok(port);
            }
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        Err(format!(
            "pg_ctl start failed 8 times; the server log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        let stopped = self
            .owner
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "-t", "60", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        stopped
            .success()
            .then_some(())
            .ok_or_else(|| format!("pg_ctl stop -m {mode}: {stopped}"))
    }
}

/// `sh` waiting for the end of its stdin, then stopping the server and removing `dir`. Its
/// own process group, so a Ctrl-C of the test run reaches the test binary (which then
/// exits and closes the pipe), not the watchdog.
fn watchdog(bin: &Path, dir: &Path, owner: &Owner) -> Result<ChildStdin, String> {
    let script = format!(
        "cat >/dev/null; {} \"$1/pg_ctl\" -D \"$2/data\" -m immediate -w -t 30 stop \
         >/dev/null 2>&1; rm -rf \"$2\"",
        owner.prefix()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(bin)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("the watchdog (sh): {e}"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| "the watchdog has no stdin".to_owned())
}

/// The directory holding `initdb` and `pg_ctl`: from `PATH` first, then the newest
/// `/usr/lib/postgresql/*/bin`. Symlinks are followed (initdb finds `postgres` beside its
/// real path).
fn server_binaries() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    // Newest major version first (`9.6` < `10` < `15`).
    debian.sort_by_key(|dir| {
        let version = dir
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        std::cmp::Reverse(
            version
                .split('.')
                .map(|part| part.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>(),
        )
    });
    from_path.into_iter().chain(debian).find_map(|dir| {
        let initdb = std::fs::canonicalize(dir.join("initdb")).ok()?;
        let bin = initdb.parent()?.to_path_buf();
        (bin.join("pg_ctl").is_file() && bin.join("postgres").is_file()).then_some(bin)
    })
}

/// Who runs the server: this process's user, or an unprivileged one when this is root (the
/// server refuses to run as root).
enum Owner {
    Me,
    User { name: String, uid: u32 },
}

impl Owner {
    fn for_this_process() -> Result<Self, String> {
        if id(&["-u"])? != "0" {
            return Ok(Self::Me);
        }
        for name in ["postgres", "nobody"] {
            if let Ok(uid) = id(&["-u", name]) {
                let uid = uid
                    .parse()
                    .map_err(|_| format!("`id -u {name}` said {uid:?}"))?;
                return Ok(Self::User {
                    name: name.to_owned(),
                    uid,
                });
            }
        }
        Err("running as root, and neither a `postgres` nor a `nobody` user exists".into())
    }

    /// Makes `path` the owner's, readable by it alone.
    fn take(&self, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
        if let Self::User { uid, .. } = self {
            std::os::unix::fs::chown(path, Some(*uid), None).map_err(failed)?;
        }
        Ok(())
    }

    fn command(&self, program: &Path) -> Command {
        match self {
            Self::Me => Command::new(program),
            Self::User { name, .. } => {
                let mut command = Command::new("runuser");
                command.args(["-u", name, "--"]).arg(program);
                command
            }
        }
    }

    /// The same as shell words, before a program.
    fn prefix(&self) -> String {
        match self {
            Self::Me => String::new(),
            Self::User { name, .. } => format!("runuser -u {name} --"),
        }
    }
}

fn id(args: &[&str]) -> Result<String, String> {
    let output = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("id: {e}"))?;
    if !output.status.success() {
        return Err(format!("`id {}` failed", args.join(" ")));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
