//! A listening address that cannot be bound is a bind error (`ErrorKind::Bind`), not a failure
//! to reach a server, and carries the OS error code; a file error carries its code and path.

use std::time::Duration;

use loadmon::blocking::ServerHandle;
use loadmon::error::ErrorKind;
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};

const EADDRINUSE: i32 = 98;
const ENOTDIR: i32 = 20;

#[test]
fn a_port_in_use_is_a_bind_error_with_its_errno() {
    let first = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })
    .unwrap();
    let e = ServerHandle::start(ServerConfig {
        port: first.port(),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bind, "{e}");
    assert_eq!(e.raw_os_error(), Some(EADDRINUSE), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("bind 127.0.0.1:{}: ", first.port())),
        "{e}"
    );
    // The HTTP listener too.
    let e = ServerHandle::start(ServerConfig {
        port: 0,
        http: Some(format!("127.0.0.1:{}", first.port())),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bind, "{e}");
    assert_eq!(e.raw_os_error(), Some(EADDRINUSE), "{e}");
    assert!(e.to_string().starts_with("bind HTTP 127.0.0.1:"), "{e}");
    first.stop().unwrap();
    assert!(first.wait(Some(Duration::from_secs(30))).is_ok());
}

#[test]
fn an_out_dir_under_a_file_is_a_file_error_with_errno_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let out_dir = file.join("sub");
    let e = FileWriter::new(FileWriterConfig {
        out_dir: out_dir.clone(),
        chunk_size_bytes: 1 << 20,
        file_size_bytes: 1 << 20,
        min_chunk_size_bytes: 1 << 20,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::File, "{e}");
    assert_eq!(e.raw_os_error(), Some(ENOTDIR), "{e}");
    assert_eq!(e.os_message().as_deref(), Some("Not a directory"), "{e}");
    assert_eq!(e.path(), Some(out_dir.as_path()), "{e}");
}
