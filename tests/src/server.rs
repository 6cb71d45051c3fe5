use crate::FakeSandbox;
use duet_protocol::{CreatedInterview, InterviewId};
use duet_sandbox::Sandbox;
use duet_server::config::ServeArgs;
use duet_server::{router, AppState};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A Duet server on a port-0 listener with its own data dir, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

impl TestServer {
    /// A server whose runs go to a [`FakeSandbox`].
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `tune` adjusted its settings.
    pub async fn start_with(tune: impl FnOnce(&mut ServeArgs)) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        TestServer::start_in(data_dir, tune).await
    }

    /// Starts a server on an existing data dir (to test restarts).
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        tune: impl FnOnce(&mut ServeArgs),
    ) -> TestServer {
        TestServer::start_full(data_dir, FakeSandbox::new(), tune).await
    }

    /// Starts a server with the given sandbox (the real Docker one, in the sandbox scenarios).
    pub async fn start_full(
        data_dir: tempfile::TempDir,
        sandbox: Arc<dyn Sandbox>,
        tune: impl FnOnce(&mut ServeArgs),
    ) -> TestServer {
        let mut args = ServeArgs::for_data_dir(data_dir.path());
        args.admin_token = Some(ADMIN_TOKEN.parse().unwrap());
        tune(&mut args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let startup = AppState::open(args, addr, shutdown.clone(), sandbox).unwrap();
        let state = startup.state;
        let app = router(state.clone());
        let stop = shutdown.clone();
        let limits = state.config.http.clone();
        let task = tokio::spawn(async move {
            duet_server::http::serve(listener, app, &limits, stop).await;
        });
        TestServer {
            addr,
            admin_token: ADMIN_TOKEN.into(),
            state,
            data_dir,
            shutdown,
            task: Some(task),
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The events websocket URL of an interview for a token.
    pub fn events_url(&self, id: &InterviewId, token: &str) -> String {
        format!(
            "ws://{}/api/interviews/{id}/events?token={token}",
            self.addr
        )
    }

    /// The websocket URL of an interview's document for a token.
    pub fn yjs_url(&self, id: &InterviewId, token: &str) -> String {
        format!("ws://{}/yjs/{id}?token={token}", self.addr)
    }

    /// Creates an interview on a question of the bank.
    pub async fn create_interview_on(
        &self,
        candidate_name: &str,
        question_id: &str,
    ) -> CreatedInterview {
        let response = reqwest::Client::new()
            .post(self.http("/api/interviews"))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"title": "Python pairing", "candidate_name": candidate_name, "question_id": question_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn create_interview(&self, candidate_name: &str) -> CreatedInterview {
        let response = reqwest::Client::new()
            .post(self.http("/api/interviews"))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"title": "Python pairing", "candidate_name": candidate_name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Stops the server the way a graceful shutdown does and hands back its data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.rooms.wait_closed().await;
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
