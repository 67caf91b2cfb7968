//! nginx from the system serving the same pages as files, to check the built-in server against a
//! production server: `sendfile`, `Content-Length`, keep-alive, one worker per core.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::data::PAGE_SIZE;
use crate::server::{API_KEY, Pages};

/// A running nginx; it is stopped when dropped.
pub struct NginxServer {
    port: u16,
    child: Child,
}

/// The nginx program: on the `PATH` or where Debian puts it.
fn program() -> Option<PathBuf> {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|program| {
            Command::new(program)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
}

/// Finds nginx, installing Debian's package when it is missing and the machine allows it.
pub fn find_or_install() -> Option<PathBuf> {
    if let Some(found) = program() {
        return Some(found);
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "nginx"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if installed { program() } else { None }
}

impl NginxServer {
    /// Writes the pages under `dir` and serves them with nginx on a free port of 127.0.0.1.
    pub fn start(pages: &Pages, dir: &Path) -> Result<Self, String> {
        let program = find_or_install().ok_or("no nginx, and `apt-get install nginx` failed")?;
        let root = dir.join("root");
        let _ = std::fs::remove_dir_all(dir);
        for (name, list) in [
            ("conversations", &pages.conversations),
            ("feedback", &pages.feedback),
        ] {
            let folder = root.join(name);
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            for (index, page) in list.iter().enumerate() {
                std::fs::write(folder.join(format!("{}.json", index * PAGE_SIZE)), page)
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
            }
            // Past the end, the last (empty) page, as the built-in server answers.
            if let Some(last) = list.last() {
                std::fs::write(folder.join("end.json"), last)
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = format!(
            r#"worker_processes auto;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/json;
        location = /conversations {{
            if ($http_authorization != "Bearer {API_KEY}") {{ return 401; }}
            try_files /conversations/$arg_offset.json /conversations/end.json =404;
        }}
        location = /feedback {{
            if ($http_authorization != "Bearer {API_KEY}") {{ return 401; }}
            try_files /feedback/$arg_offset.json /feedback/end.json =404;
        }}
    }}
}}
"#,
            dir = dir.display(),
            root = root.display(),
        );
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .arg("-c")
            .arg(&config_path)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx: {e}"))?;
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "nginx did not listen on port {port}; see {}",
                    dir.join("error.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The base URL to give contenders.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        // nginx's master process stops its workers when it ends.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
