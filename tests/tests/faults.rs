//! Storage faults under a live server: the disk fills up while two people type, the file
//! system turns read-only under them, the database file is deleted. The server never panics,
//! nothing anyone received is lost, clients are told their edits were not saved, and editing
//! resumes once a full disk has space again. The data dir sits on a small tmpfs, or an ext4
//! image on a loop device, that the test mounts (CI runs as root); without the rights to mount
//! one, the test fails and says so.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::close;
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "\n\nTHIS TEST MOUNTS A SMALL TMPFS AND NEEDS ROOT (CI runs as root): `mount -t tmpfs` failed\n"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte; returns the filler to delete later.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// An ext4 file system in an image on a loop device, mounted for one test and unmounted when
/// dropped. Mounted `errors=remount-ro`: an error (or [`Ext4::abort`]) turns it read-only, the
/// way a kernel protects a failing disk, and never panics the machine.
struct Ext4 {
    dir: tempfile::TempDir,
    _image: tempfile::TempDir,
}

impl Ext4 {
    fn mount(bytes: u64) -> Ext4 {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(bytes)
            .unwrap();
        let made = Command::new("mkfs.ext4").arg("-q").arg(&image).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfs.ext4 failed");
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&image)
            .arg(dir.path())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "\n\nTHIS TEST MOUNTS AN EXT4 IMAGE ON A LOOP DEVICE AND NEEDS ROOT (CI runs as root): `mount -o loop` failed\n"
        );
        Ext4 {
            dir,
            _image: image_dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What ext4 does on a fatal error: abort its journal and refuse every write from then
    /// on (EROFS), with the files still open. (That is how the kernels this project runs on,
    /// 6.18, treat `errors=remount-ro`; older ones may shut the file system down and answer
    /// EIO instead, which the store reports as an I/O error and this test would flag.)
    fn abort(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,abort"])
            .arg(self.path())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "remount,abort failed");
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    let response = reqwest::get(server.http("/healthz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acknowledging_edits_tells_the_clients_and_editing_resumes_once_space_is_free(
) {
    let disk = Tmpfs::mount("6m");
    let data = tempfile::tempdir_in(disk.path()).unwrap();
    let server = TestServer::start_in(data, |_| {}).await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let interviewer =
        YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);
    candidate.insert(0, "def solve():\n");
    assert!(eventually(PATIENCE, || interviewer.text() == "def solve():\n").await);

    let filler = disk.fill();
    // The candidate keeps typing large chunks until a commit meets the full disk.
    let chunk = "    x = 'padding the document until the disk is full'\n".repeat(300);
    for _ in 0..400 {
        if candidate.closed().is_some() {
            break;
        }
        candidate.insert(candidate.len(), &chunk);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        eventually(PATIENCE, || candidate.closed().is_some()).await,
        "the candidate is told"
    );
    let closed = candidate.closed().unwrap();
    assert_eq!(closed.code, close::INTERNAL, "{closed:?}");
    assert!(
        closed.reason.contains("not saved") && closed.reason.contains("disk full"),
        "{closed:?}"
    );
    assert!(
        eventually(PATIENCE, || interviewer.closed().is_some()).await,
        "everyone in the room is told"
    );
    let received = interviewer.text();

    // The server is alive and says what is wrong.
    let (status, _) = health(&server).await;
    assert!(status == 200 || status == 503, "the server answers");

    // Space comes back: the room reloads and editing resumes; nothing anyone received was lost.
    std::fs::remove_file(filler).unwrap();
    let back = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || back.synced()).await);
    assert!(
        back.text().starts_with(&received),
        "everything the interviewer had received is stored"
    );
    back.insert(0, "# resumed\n");
    let stored = || {
        duet_core::rebuild(None, server.state.store.read_log(&interview.id, 0).unwrap())
            .unwrap()
            .text()
    };
    assert!(
        eventually(PATIENCE, || stored().starts_with("# resumed\n")).await,
        "new edits are stored again"
    );
    assert!(stored().contains(&received));
    let (status, body) = health(&server).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_turned_read_only_under_the_room_is_reported_and_nothing_received_is_lost() {
    let disk = Ext4::mount(32 << 20);
    let data = tempfile::tempdir_in(disk.path()).unwrap();
    let server = TestServer::start_in(data, |_| {}).await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    let interviewer =
        YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.interviewer))
            .await
            .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);
    candidate.insert(0, "def solve():\n");
    assert!(eventually(PATIENCE, || interviewer.text() == "def solve():\n").await);

    disk.abort();
    for line in 0..200 {
        if candidate.closed().is_some() {
            break;
        }
        candidate.insert(candidate.len(), &format!("    step_{line} = {line}\n"));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        eventually(PATIENCE, || candidate.closed().is_some()).await,
        "the candidate is told"
    );
    let closed = candidate.closed().unwrap();
    assert_eq!(closed.code, close::INTERNAL, "{closed:?}");
    assert!(
        closed.reason.contains("not saved") && closed.reason.contains("read-only"),
        "{closed:?}"
    );
    assert!(
        eventually(PATIENCE, || interviewer.closed().is_some()).await,
        "everyone in the room is told"
    );

    // Nothing anyone received is missing from the log (reads still work on the aborted file
    // system), and health says what is wrong.
    let received = interviewer.text();
    let stored = duet_core::rebuild(None, server.state.store.read_log(&interview.id, 0).unwrap())
        .unwrap()
        .text();
    assert!(stored.starts_with(&received), "{stored:?} / {received:?}");
    let (status, body) = health(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "failing writes", "{body}");
    assert!(
        body["store_problem"]
            .as_str()
            .is_some_and(|p| p.contains("read-only")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_reported_not_a_panic() {
    let disk = Tmpfs::mount("16m");
    let data = tempfile::tempdir_in(disk.path()).unwrap();
    let db = data.path().join("duet.db");
    let server = TestServer::start_in(data, |_| {}).await;
    let interview = server.create_interview("Ada").await;
    let candidate = YClient::connect(&server.yjs_url(&interview.id, &interview.tokens.candidate))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || candidate.synced()).await);
    candidate.insert(0, "print('before')\n");
    assert!(
        eventually(PATIENCE, || server
            .state
            .store
            .read_log(&interview.id, 0)
            .unwrap()
            .len()
            >= 2)
        .await
    );

    // Deleted under the live server: health reports it instead of claiming all is well.
    std::fs::remove_file(&db).unwrap();
    let (status, body) = health(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unreadable", "{body}");
}
