//! One sandbox container: its hardened spec, and creating, attaching, starting and removing it.
//! Host code never reads or writes paths inside a container: files go in over the attached
//! stdin, output comes back over the attached stdout and stderr.

use crate::owned::Owned;
use crate::{DockerConfig, Limits};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::Stream;
use std::collections::HashMap;
use std::pin::Pin;
use tokio::io::AsyncWrite;

/// Every sandbox container carries `duet.sandbox=1`...
pub const LABEL: &str = "duet.sandbox";
/// ...and the server instance that made it.
pub const INSTANCE_LABEL: &str = "duet.sandbox.instance";
/// The group of every sandbox user (the image's `sandbox` group); the uid is per container.
const GID: u32 = 10001;
/// Our seccomp profile: Docker 20.10's default minus socket families other than unix, inet,
/// inet6 and netlink, io_uring, ptrace and process_vm_* (sandbox/README.md, line by line).
pub const SECCOMP_PROFILE: &str = include_str!("../../../sandbox/seccomp.json");
/// Docker's default masked paths (a `MaskedPaths` list replaces them, so they are repeated),
/// then the pty devices: nothing in a sandbox needs a terminal, and ptys are a host-wide pool.
const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/dev/pts",
    "/dev/ptmx",
];
/// Docker's default read-only paths, and all of /proc: an unprivileged process may lower its
/// own `oom_score_adj` (down to 0, below the 500 the server sets), and nothing in a sandbox
/// needs to write to /proc.
const READONLY_PATHS: [&str; 6] = [
    "/proc",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;
pub type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// A started container, attached, whose runner waits for its header on stdin.
pub struct Attached {
    pub owned: Owned,
    pub output: Output,
    pub input: Input,
}

/// A fresh container name for this instance.
pub fn new_name(instance: &str) -> String {
    format!("duet-{instance}-{}", &crate::protocol::nonce()[..16])
}

/// The limits that are fixed when a container is created (wall time and the output cap are
/// the server's, so a warm container serves any of those).
pub fn same_container_limits(a: &Limits, b: &Limits) -> bool {
    (
        a.memory_bytes,
        a.pids,
        a.nano_cpus,
        a.cpu_secs,
        a.nofile,
        a.fsize_bytes,
        a.work_dir_bytes,
    ) == (
        b.memory_bytes,
        b.pids,
        b.nano_cpus,
        b.cpu_secs,
        b.nofile,
        b.fsize_bytes,
        b.work_dir_bytes,
    )
}

fn ulimit(name: &str, value: u64) -> ResourcesUlimits {
    let v = i64::try_from(value).unwrap_or(i64::MAX);
    ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(v),
        hard: Some(v),
    }
}

/// The container: no network, read-only root, noexec tmpfs work dir, no capabilities, no new
/// privileges, our seccomp profile, no ptys, a read-only /proc, its own non-root uid, an init,
/// no logs, resource limits; stdin open for the runner.
pub fn spec(
    cfg: &DockerConfig,
    image: &str,
    limits: &Limits,
    preload_pytest: bool,
    uid: u32,
) -> ContainerCreateBody {
    let tmpfs_opts = |extra: &str| {
        format!(
            "rw,noexec,nosuid,nodev,size={},{extra}",
            limits.work_dir_bytes
        )
    };
    let mut cmd = vec!["/usr/local/bin/duet-runner".to_string()];
    if preload_pytest {
        cmd.push("--preload-pytest".into());
    }
    let host = HostConfig {
        network_mode: Some("none".into()),
        // With no network, the host's resolver would only be unreachable; point resolution at
        // the container's own loopback so it fails at once without addressing anything else.
        dns: Some(vec!["127.0.0.1".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([
            (
                "/work".to_string(),
                tmpfs_opts(&format!("mode=0700,uid={uid},gid={GID}")),
            ),
            ("/tmp".to_string(), tmpfs_opts("mode=1777")),
        ])),
        shm_size: Some(i64::try_from(limits.work_dir_bytes).unwrap_or(i64::MAX)),
        memory: Some(limits.memory_bytes),
        memory_swap: Some(limits.memory_bytes),
        pids_limit: Some(limits.pids),
        nano_cpus: Some(limits.nano_cpus),
        // Not nproc: it counts the uid's processes across every container on the host.
        ulimits: Some(vec![
            ulimit("cpu", limits.cpu_secs),
            ulimit("nofile", limits.nofile),
            ulimit("fsize", limits.fsize_bytes),
        ]),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec![
            "no-new-privileges".into(),
            format!("seccomp={SECCOMP_PROFILE}"),
        ]),
        masked_paths: Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()),
        readonly_paths: Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()),
        privileged: Some(false),
        init: Some(true),
        ipc_mode: Some("private".into()),
        oom_score_adj: Some(500),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        auto_remove: Some(false),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd),
        entrypoint: Some(vec![]),
        user: Some(format!("{uid}:{GID}")),
        working_dir: Some("/work".into()),
        hostname: Some("sandbox".into()),
        // The whole environment: nothing of the server's leaks in.
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".into(),
            "PYTHONUNBUFFERED=1".into(),
            "PYTHONDONTWRITEBYTECODE=1".into(),
            "LANG=C.UTF-8".into(),
            "HOME=/tmp".into(),
        ]),
        network_disabled: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        labels: Some(HashMap::from([
            (LABEL.to_string(), "1".to_string()),
            (INSTANCE_LABEL.to_string(), cfg.instance.clone()),
        ])),
        host_config: Some(host),
        ..Default::default()
    }
}

/// Creates, attaches (before starting, so no output is missed) and starts the container
/// `owned` names. On failure, `owned` comes back with the error: its holder removes what was
/// made (dropping it does too, in the background).
pub async fn launch(
    docker: &Docker,
    owned: Owned,
    body: ContainerCreateBody,
) -> Result<Attached, (Owned, DockerError)> {
    let name = owned.name().to_string();
    let name = name.as_str();
    let create = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    if let Err(e) = docker.create_container(Some(create), body).await {
        return Err((owned, e));
    }
    let attached = async {
        let attach = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let io = docker.attach_container(name, Some(attach)).await?;
        docker.start_container(name, None).await?;
        Ok::<_, DockerError>((io.output, io.input))
    }
    .await;
    match attached {
        Ok((output, input)) => Ok(Attached {
            owned,
            output,
            input,
        }),
        Err(e) => Err((owned, e)),
    }
}

/// Kills (if running) and removes a container; one already gone is fine.
pub async fn remove(docker: &Docker, name: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(())
        | Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // 409: removal already in progress (a concurrent reaper or kill).
        Err(DockerError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}
