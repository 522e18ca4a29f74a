//! Third-party proxies in front of the server, for the tests that need
//! them: HAProxy and nginx started on a config in a temporary directory,
//! waited for, and stopped by PID.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A proxy process, killed (by its PID) and reaped when dropped.
pub struct Proxy {
    pub child: Child,
    pub _dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Drop for Proxy {
    /// SIGTERM first, so that nginx's master stops its workers (SIGKILL
    /// would leave them running); SIGKILL if it is not gone in 5 s.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Waits until every port in `ports` takes connections.
    pub fn wait_ports(&mut self, ports: &[u16]) {
        for port in ports {
            super::wait_for(Duration::from_secs(10), "the proxy to listen", || {
                if let Ok(Some(status)) = self.child.try_wait() {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    panic!("the proxy exited ({status}): {log}");
                }
                TcpStream::connect(("127.0.0.1", *port)).is_ok()
            });
        }
    }
}

/// The path of a program, from the usual places; a test without it fails.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is not installed: it is in .ci/apt-packages.txt, which .ci/install installs");
}

pub fn haproxy(config: &str, ports: &[u16]) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, config).unwrap();
    let log = dir.path().join("haproxy.log");
    let child = Command::new(tool("haproxy"))
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("haproxy.err")).unwrap())
        .spawn()
        .expect("start haproxy");
    let mut proxy = Proxy {
        child,
        _dir: dir,
        log,
    };
    proxy.wait_ports(ports);
    proxy
}

/// nginx with `body` as its configuration (after its `load_module` lines,
/// the `pid`, `error_log` and `events` lines every test needs; `{dir}` in
/// it is the temporary directory), waited for on `ports`.
pub fn nginx(body: &str, ports: &[u16]) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let d = dir.path().display().to_string();
    let conf = dir.path().join("nginx.conf");
    let body = body.replace("{dir}", &d);
    // nginx takes `load_module` only before every other directive.
    let (modules, rest): (Vec<&str>, Vec<&str>) =
        body.lines().partition(|l| l.starts_with("load_module"));
    let text = format!(
        "{}\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n{}\n",
        modules.join("\n"),
        rest.join("\n")
    );
    std::fs::write(&conf, text).unwrap();
    let log = dir.path().join("error.log");
    let child = Command::new(tool("nginx"))
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut nginx = Proxy {
        child,
        _dir: dir,
        log,
    };
    nginx.wait_ports(ports);
    nginx
}
