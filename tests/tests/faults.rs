//! Storage faults under a live server: the disk fills up while two people type, the file
//! system turns read-only under them, the database file is deleted. The server never panics,
//! nothing anyone received is lost, clients are told their edits were not saved, and editing
//! resumes once a full disk has space again. The data dir sits on a small tmpfs, or an ext4
//! image on a loop device, that the test mounts (CI runs as root); without the rights to mount
//! one, the test fails and says so.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

use duet_protocol::{close, CreatedInterview};
use duet_tests::{eventually, TestServer, YClient, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file system mounted for one test, unmounted when dropped.
struct Mount {
    dir: tempfile::TempDir,
    /// The image file behind a loop-device mount.
    _image: Option<tempfile::TempDir>,
}

fn run(command: &mut Command, what: &str) {
    let status = command.status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "\n\nTHIS TEST NEEDS ROOT, AS CI HAS (mounting a file system for the data dir): `{what}` failed\n"
    );
}

impl Mount {
    fn tmpfs(size: &str) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path()),
            "mount -t tmpfs",
        );
        Mount { dir, _image: None }
    }

    /// An ext4 file system in an image on a loop device, mounted `errors=remount-ro`: an error
    /// (or [`Mount::abort`]) turns it read-only, the way a kernel protects a failing disk, and
    /// never panics the machine.
    fn ext4(bytes: u64) -> Mount {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(bytes)
            .unwrap();
        run(Command::new("mkfs.ext4").arg("-q").arg(&image), "mkfs.ext4");
        let dir = tempfile::tempdir().unwrap();
        run(
            Command::new("mount")
                .args(["-o", "loop,errors=remount-ro"])
                .arg(&image)
                .arg(dir.path()),
            "mount -o loop",
        );
        Mount {
            dir,
            _image: Some(image_dir),
        }
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

    /// What ext4 does on a fatal error: abort its journal and refuse every write from then
    /// on (EROFS), with the files still open. (That is how the kernels this project runs on,
    /// 6.18, treat `errors=remount-ro`; older ones may shut the file system down and answer
    /// EIO instead, which the store reports as an I/O error and this test would flag.)
    fn abort(&self) {
        run(
            Command::new("mount")
                .args(["-o", "remount,abort"])
                .arg(self.path()),
            "mount -o remount,abort",
        );
    }
}

impl Drop for Mount {
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

/// A server with its data dir on `disk`, and an interview where the candidate has typed a first
/// line the interviewer sees.
struct Typing {
    server: TestServer,
    interview: CreatedInterview,
    candidate: YClient,
    interviewer: YClient,
}

impl Typing {
    async fn start(disk: &Mount) -> Typing {
        let data = tempfile::tempdir_in(disk.path()).unwrap();
        let server = TestServer::start_in(data, |_| {}).await;
        let interview = server.create_interview("Ada").await;
        let url = |token: &str| server.yjs_url(&interview.id, token);
        let candidate = YClient::connect(&url(&interview.tokens.candidate))
            .await
            .unwrap();
        let interviewer = YClient::connect(&url(&interview.tokens.interviewer))
            .await
            .unwrap();
        assert!(eventually(PATIENCE, || candidate.synced() && interviewer.synced()).await);
        candidate.insert(0, "def solve():\n");
        assert!(eventually(PATIENCE, || interviewer.text() == "def solve():\n").await);
        Typing {
            server,
            interview,
            candidate,
            interviewer,
        }
    }

    /// The candidate keeps typing `text(i)` until a commit fails; both are told (1011, "not
    /// saved", naming `failure`). Returns the text the interviewer had received.
    async fn until_not_saved(&self, text: impl Fn(usize) -> String, failure: &str) -> String {
        for i in 0..400 {
            if self.candidate.closed().is_some() {
                break;
            }
            self.candidate.insert(self.candidate.len(), &text(i));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            eventually(PATIENCE, || self.candidate.closed().is_some()).await,
            "the candidate is told"
        );
        let closed = self.candidate.closed().unwrap();
        assert_eq!(closed.code, close::INTERNAL, "{closed:?}");
        assert!(
            closed.reason.contains("not saved") && closed.reason.contains(failure),
            "{closed:?}"
        );
        assert!(
            eventually(PATIENCE, || self.interviewer.closed().is_some()).await,
            "everyone in the room is told"
        );
        self.interviewer.text()
    }

    /// The document as the stored log rebuilds it.
    fn stored(&self) -> String {
        let log = self.server.state.store.read_log(&self.interview.id, 0);
        duet_core::rebuild(None, log.unwrap()).unwrap().text()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acknowledging_edits_tells_the_clients_and_editing_resumes_once_space_is_free(
) {
    let disk = Mount::tmpfs("6m");
    let room = Typing::start(&disk).await;
    let filler = disk.fill();
    // Large chunks, until a commit meets the full disk.
    let chunk = "    x = 'padding the document until the disk is full'\n".repeat(300);
    let received = room.until_not_saved(|_| chunk.clone(), "disk full").await;

    // The server is alive and says what is wrong.
    let (status, _) = health(&room.server).await;
    assert!(status == 200 || status == 503, "the server answers");

    // Space comes back: the room reloads and editing resumes; nothing anyone received was lost.
    std::fs::remove_file(filler).unwrap();
    let tokens = &room.interview.tokens;
    let back = YClient::connect(&room.server.yjs_url(&room.interview.id, &tokens.interviewer))
        .await
        .unwrap();
    assert!(eventually(PATIENCE, || back.synced()).await);
    assert!(
        back.text().starts_with(&received),
        "everything the interviewer had received is stored"
    );
    back.insert(0, "# resumed\n");
    assert!(
        eventually(PATIENCE, || room.stored().starts_with("# resumed\n")).await,
        "new edits are stored again"
    );
    assert!(room.stored().contains(&received));
    let (status, body) = health(&room.server).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_turned_read_only_under_the_room_is_reported_and_nothing_received_is_lost() {
    let disk = Mount::ext4(32 << 20);
    let room = Typing::start(&disk).await;
    disk.abort();
    let received = room
        .until_not_saved(|i| format!("    step_{i} = {i}\n"), "read-only")
        .await;

    // Nothing anyone received is missing from the log (reads still work on the aborted file
    // system), and health says what is wrong.
    let stored = room.stored();
    assert!(stored.starts_with(&received), "{stored:?} / {received:?}");
    let (status, body) = health(&room.server).await;
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
    let disk = Mount::tmpfs("16m");
    let room = Typing::start(&disk).await;
    assert!(!room.stored().is_empty(), "the first line is stored");

    // Deleted under the live server: health reports it instead of claiming all is well.
    std::fs::remove_file(room.server.data_dir.path().join("duet.db")).unwrap();
    let (status, body) = health(&room.server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unreadable", "{body}");
}
