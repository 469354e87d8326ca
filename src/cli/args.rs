//! The clap definition of every command and flag: the single source of `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::common_args::OutputFormat;
pub(crate) use super::common_args::{CompressionArg, ProjectArg};

/// `--version`'s text after `kiln `: what `kiln version` says (`cli/info.rs`), in short.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("KILN_GIT_COMMIT"),
    "\nrustc:  ",
    env!("KILN_RUSTC_VERSION"),
);

/// kiln — declarative containers: one KDL file for images, networks, containers, links and
/// tests.
///
/// kiln reads `kiln.kdl` in the current directory (or `-f FILE`), checks it with precise
/// diagnostics and builds, runs and tests what it declares. All state lives under `--root`.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    long_version = LONG_VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Directory that holds all of kiln's state (images, containers, networks).
    ///
    /// Default: /var/lib/kiln as root, $XDG_DATA_HOME/kiln otherwise.
    #[arg(
        long,
        global = true,
        env = "KILN_ROOT",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate the project file; print every problem with its source span.
    ///
    /// Exit 0 when the project is valid (warnings allowed), 1 when it has errors or cannot
    /// be read. Every diagnostic has a stable code with a page in the book's error index.
    ///
    /// Examples:
    ///   kiln check
    ///   kiln check -f examples/design/kiln.kdl
    ///   kiln check --format json | jq '.diagnostics[].message'
    ///   kiln check --print        # the resolved model, imports applied, defaults filled
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Draw the project's topology: containers and jobs, networks, links with their
    /// impairments, published ports, dependencies and hosts.
    ///
    /// Writes Graphviz dot (default), a Mermaid flowchart or JSON on standard output or to
    /// -o FILE. The same project always gives the same bytes. An invalid project prints its
    /// diagnostics, as `kiln check` does, and exits with 1.
    ///
    /// Examples:
    ///   kiln graph | dot -Tsvg -o topology.svg
    ///   kiln graph -f examples/design/kiln.kdl --format mermaid -o topology.mmd
    ///   kiln graph --format json | jq '.edges[] | select(.kind == "link")'
    #[command(verbatim_doc_comment)]
    Graph(GraphArgs),

    /// Build the project's images (all, or those named, with what they need) into the store.
    ///
    /// Steps run in parallel where they can; each is looked up in the build cache by a key
    /// over everything it depends on, so unchanged steps cost nothing. The same project gives
    /// the same image digests on any machine.
    ///
    /// Examples:
    ///   kiln build
    ///   kiln build web --jobs 4
    ///   kiln build --dry-run            # the plan: every step with its cache key
    ///   kiln build --report build.json  # steps, hits and misses with reasons, digests
    ///   kiln build --verify             # rebuild from scratch elsewhere and compare
    #[command(verbatim_doc_comment)]
    Build(BuildArgs),

    /// Explain the cache: for each step of an image, its key, hit or miss, and for a miss
    /// the input that changed since the last build (which file, which env, which argument).
    ///
    /// Examples:
    ///   kiln explain web
    ///   kiln explain web --format json
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),

    /// Run a command in a new container, as `docker run` does: in the foreground, or with
    /// -d detached under a supervisor.
    ///
    /// The container gets its own pid, mount, uts, ipc, net and cgroup namespaces, an
    /// overlayfs root over the image's layers, Docker's default capabilities and masked
    /// paths, and the limits asked for. The exit code is the container's own; 125 when kiln
    /// cannot start it, 126 when the command cannot be executed, 127 when it is not found.
    ///
    /// With -d, kiln prints the container's id once it runs and returns. Its supervisor keeps
    /// its output with timestamps (`kiln logs`), records how it exits and applies --restart
    /// (no, on-failure[:N], always, unless-stopped; waits double from 100 ms between tries).
    /// It also runs the --health-* check, shown by `kiln ps`; with --restart on-unhealthy
    /// an unhealthy container is killed and started again.
    ///
    /// Examples:
    ///   kiln run --rm web
    ///   kiln run --rm -e MODE=debug -v ./data:/data:ro web sh -c 'ls /data'
    ///   kiln run --rm --memory 64MiB --pids-limit 32 base sh -c 'echo limited'
    ///   kiln run --rm -it toolbox sh
    ///   kiln run --rm --trace base true    # every namespace, mount, cgroup file, exec
    ///   kiln run -d --name web --restart on-failure:3 web
    ///   kiln run -d --name api --health-http http://localhost:8080/health \
    ///       --health-interval 5s --restart on-unhealthy api
    ///   kiln logs -f web; kiln stop web; kiln rm web
    // `-h` is the host name, as in Docker: help is `--help` only.
    #[command(verbatim_doc_comment, disable_help_flag = true)]
    Run(Box<RunArgs>),

    /// Create a container and do not start it, as `docker create` does: every option of
    /// `kiln run` but -d; prints the container's id.
    ///
    /// The image's layers are unpacked, the container's root, config and addresses on its
    /// networks made ready, its record written with the status `created`; nothing runs
    /// until `kiln start`. Options of a detached container (--restart, --health-*) apply
    /// when it starts; -i and -t when it starts with `kiln start -a`.
    ///
    /// Examples:
    ///   kiln create --name web -p 18080:8080 --network front web
    ///   kiln start web
    ///   kiln create --name job -it base sh && kiln start -ai job
    // `-h` is the host name, as in Docker: help is `--help` only.
    #[command(verbatim_doc_comment, disable_help_flag = true)]
    Create(Box<CreateArgs>),

    /// Start created or stopped containers, as `docker start` does: each under a
    /// supervisor (as `kiln run -d`), printing its name; one already running is left as
    /// it is.
    ///
    /// With -a the one container runs in the foreground instead, its output on kiln's
    /// (with -i its input from kiln's, with a terminal if it was created with -t), and
    /// kiln exits with its exit code, as `kiln run` does.
    ///
    /// Examples:
    ///   kiln start web
    ///   kiln start -a job; echo "exit $?"
    ///   kiln start -ai shell
    #[command(verbatim_doc_comment)]
    Start(StartArgs),

    /// Block until containers stop, then print each one's exit code, one a line in the
    /// order given, as `docker wait` does.
    ///
    /// Returns at once for a container that does not run (a created one: 0). Waits on the
    /// kernel's word (the container's and its supervisor's pidfds, the record's changes),
    /// never by polling. Exit 1 if a container is unknown.
    ///
    /// Examples:
    ///   kiln wait web
    ///   kiln run -d --name job base sh -c 'exit 3'; kiln wait job    # 3
    #[command(verbatim_doc_comment)]
    Wait(WaitArgs),

    /// List a running container's published ports, or the host address of one of them,
    /// as `docker port` does.
    ///
    /// Examples:
    ///   kiln port web                # 8080/tcp -> 127.0.0.1:18080
    ///   kiln port web 8080/tcp       # 127.0.0.1:18080
    ///   kiln port web 53/udp
    #[command(verbatim_doc_comment)]
    Port(PortArgs),

    /// Show the processes of a running container, as `docker top` does: those of its
    /// cgroup, read from /proc, in `ps -ef`'s columns (pids are the machine's).
    ///
    /// After the container, `-o LIST` picks the columns: pid, ppid, user, uid, comm, args,
    /// cmd, stat, time, etime, rss, vsz, tty, c, stime (`ps`'s keywords).
    ///
    /// Examples:
    ///   kiln top web
    ///   kiln top web -o pid,stat,rss,args
    #[command(verbatim_doc_comment)]
    Top(TopArgs),

    /// Copy files between a container and the machine, as `docker cp` does; running,
    /// created and stopped containers alike.
    ///
    /// One side is CONTAINER:PATH (PATH from the container's root), the other a local path,
    /// or `-` for a tar stream (on stdout as DEST, on stdin as SRC: extracted into the
    /// directory DEST). A file goes into a directory under its name, or replaces a file; a
    /// directory goes into an existing directory under its name, or only its contents with
    /// SRC ending in `/.`; a DEST that does not exist is made (its parent must exist; a DEST
    /// ending in `/` must be a directory). A symbolic link SRC is copied as a link (-L
    /// follows it). Every path in the container is resolved inside its root: its links
    /// never lead kiln to the machine's files. Copies are owned by root unless -a.
    ///
    /// Examples:
    ///   kiln cp web:/etc/hosts .
    ///   kiln cp ./site/. web:/srv/www          # the contents of site into /srv/www
    ///   kiln cp web:/var/log - | tar -tv        # a tar stream
    ///   tar -c conf | kiln cp - web:/etc
    #[command(verbatim_doc_comment)]
    Cp(CpArgs),

    /// Run a command in a running container, as `docker exec` does.
    ///
    /// The process joins the container's namespaces (mount, pid, uts, ipc, net, cgroup) and
    /// its cgroup, with the container's environment (plus -e), user (unless -u), working
    /// directory (unless -w), capabilities, rlimits and no_new_privs. The exit code is the
    /// command's own; 126 when it cannot be executed, 127 when it is not found, 125 when
    /// kiln cannot start it (the container is not running, say).
    ///
    /// Examples:
    ///   kiln exec web cat /proc/1/cmdline
    ///   kiln exec -it web sh
    ///   kiln exec -e DEBUG=1 -u nobody -w /tmp web env
    ///   kiln exec -d web touch /ready
    ///   kiln exec --trace web true      # every setns, the fork, each step of the process
    // `-h` stays free as in `kiln run`: help is `--help` only.
    #[command(verbatim_doc_comment, disable_help_flag = true)]
    Exec(ExecArgs),

    /// List containers (running ones; all with -a).
    ///
    /// Examples:
    ///   kiln ps -a
    ///   kiln ps --filter status=exited -q        # for `kiln rm $(…)`
    ///   kiln ps --filter name=web --filter name=db --filter label=tier=front
    ///   kiln ps --filter ancestor=base --format json
    #[command(verbatim_doc_comment)]
    Ps(PsArgs),

    /// Remove containers (-f: also running ones, killed first).
    Rm(RmArgs),

    /// Show a container's output (kept by the supervisor of a detached container).
    ///
    /// Examples:
    ///   kiln logs web
    ///   kiln logs -f --since 10m --timestamps web
    ///   kiln logs --tail 20 web
    ///   kiln logs --since 2026-12-01T10:00:00Z --until 2026-12-01T10:05:00Z web
    #[command(verbatim_doc_comment)]
    Logs(LogsArgs),

    /// Stop containers: their stop signal (--stop-signal, else the image's STOPSIGNAL, else
    /// SIGTERM), SIGKILL after -t seconds (default: their --stop-timeout, else 10).
    Stop(StopArgs),

    /// Send a signal to containers' main process (default SIGKILL); they are not restarted.
    Kill(KillArgs),

    /// Stop containers and start them again (detached).
    Restart(StopArgs),

    /// Pause containers: every process frozen by the cgroup freezer until `kiln unpause`
    /// (Docker's meaning). A paused container keeps its memory, sockets and addresses; what
    /// is sent to it waits unanswered, as for a machine that hangs. `kiln stop`, `kill` and
    /// `rm -f` thaw it first.
    Pause(PauseArgs),

    /// Let paused containers run again.
    Unpause(PauseArgs),

    /// Bring the project up: build what is missing, start its containers in dependency
    /// order, wait for health and jobs; then follow their output until Ctrl-C (-d: return).
    ///
    /// Containers that run unchanged are kept; ones the file no longer declares are
    /// removed; changed ones are rolled out: one instance of a service at a time, each
    /// healthy (or, without a health check, started) before the next is replaced. One that
    /// fails is rolled back and the rollout stops (exit 1); the previous version of each
    /// replaced instance is kept for `kiln rollback`. `depends-on` conditions are honoured: `started`,
    /// `healthy` (its health check passes), `completed` (a job exited 0).
    ///
    /// Examples:
    ///   kiln up -d
    ///   kiln up -d web             # web and what it depends on
    ///   kiln up                    # logs prefixed by container; Ctrl-C stops the project
    #[command(verbatim_doc_comment)]
    Up(UpArgs),

    /// Check the assertions of the project's `test` blocks from inside its containers.
    ///
    /// Brings the project up first (as `kiln up -d`; `--no-up` tests what runs now), then
    /// runs each assertion — http, tcp, ping and dns from inside the `from` container's
    /// network namespace, exec in the container — and prints it as it completes. A failure
    /// shows where kiln.kdl declares it and what was observed. Exit 0 only when every
    /// assertion passed, 1 otherwise.
    ///
    /// Examples:
    ///   kiln test
    ///   kiln test "web answers by name"
    ///   kiln test --no-up --format json | jq '.results[] | select(.passed | not)'
    ///   kiln test --junit report.xml            # for CI
    #[command(verbatim_doc_comment)]
    Test(TestArgs),

    /// Stop and remove the project's containers, links and networks (and named volumes with -v).
    ///
    /// Examples:
    ///   kiln down
    ///   kiln down -v -f examples/three-tier/kiln.kdl
    #[command(verbatim_doc_comment)]
    Down(DownArgs),

    /// Put the previous version of a service's instances back, one at a time.
    ///
    /// `kiln up` keeps the version it replaced of each instance; this stops the current
    /// one and starts that one again (its image and definition), each ready before the
    /// next. The replaced version is kept in turn: a second rollback undoes the first.
    /// The next `kiln up` rolls out kiln.kdl again.
    ///
    /// Examples:
    ///   kiln rollback web
    ///   kiln rollback web -f examples/three-tier/kiln.kdl
    #[command(verbatim_doc_comment)]
    Rollback(RollbackArgs),

    /// Manage kiln networks: bridges with DNS by container name, in kiln's own network
    /// namespace (never the machine's).
    ///
    /// Examples:
    ///   kiln network create front --subnet 10.89.0.0/24
    ///   kiln run -d --name web --network front -p 18080:8080 web
    ///   kiln network inspect front --format json
    ///   kiln network exec -- ip -br addr      # look inside the kiln host namespace
    ///   kiln network rm front
    #[command(verbatim_doc_comment, subcommand)]
    Network(NetworkCommand),

    /// Manage named volumes: directories under the state root that outlive containers.
    ///
    /// A project's volume `data` is `PROJECT/data`; a bare name means the current
    /// project's, else the one of no project, else the one project's that has it.
    ///
    /// Examples:
    ///   kiln volume create data
    ///   kiln run --rm -v data:/data tools sh -c 'echo hi > /data/f'
    ///   kiln volume ls --format json
    ///   kiln volume prune --all --filter label=tmp
    #[command(verbatim_doc_comment, subcommand)]
    Volume(VolumeCommand),

    /// The disk the state root takes, and removing what nothing uses.
    ///
    /// Examples:
    ///   kiln system df
    ///   kiln system df -v --format json
    ///   kiln system prune -f
    ///   kiln system prune -a --volumes
    #[command(verbatim_doc_comment, subcommand)]
    System(SystemCommand),

    /// The supervisor of a detached container (started by `kiln run -d`).
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),

    /// The DNS daemon of a state root (started by `kiln network create`).
    #[command(name = "__netd", hide = true)]
    Netd,

    /// kiln's impairment engine of a state root (started by the network supervisor while a
    /// link or attachment needs it).
    #[command(name = "__linkd", hide = true)]
    Linkd,
    /// The supervisor of a state root's network services (started with the DNS daemon).
    #[command(name = "__netsup", hide = true)]
    Netsup,

    /// Write the OCI bundle kiln would run (DIR/config.json, DIR/rootfs), for runc.
    ///
    /// Examples:
    ///   kiln bundle base /tmp/b && runc run --bundle /tmp/b demo
    #[command(verbatim_doc_comment)]
    Bundle(BundleArgs),

    /// Show what running containers use: CPU, memory, pids, network and block I/O,
    /// refreshed every second until Ctrl-C (as `docker stats` does).
    ///
    /// CPU % is the CPU time the container's cgroup used per wall time between two
    /// readings (100% = one CPU). MEM leaves out the inactive file cache and is measured
    /// against the container's limit, or the host's memory without one. NET I/O counts the
    /// container's own interfaces (not lo); BLOCK I/O the bytes its cgroup read and wrote.
    ///
    /// Examples:
    ///   kiln stats
    ///   kiln stats --no-stream web db
    ///   kiln stats --no-stream --format json | jq '.[] | {name, cpu_percent}'
    #[command(verbatim_doc_comment)]
    Stats(StatsArgs),

    /// Make an image of a container's changes: the files it wrote and deleted become one
    /// more layer on top of its image's layers, tagged IMAGE; prints the new manifest digest.
    ///
    /// The image's config is kept (with --change applied) and a history entry added. The
    /// layer is written as build layers are (mtimes at SOURCE_DATE_EPOCH, default 0), so
    /// committing an unchanged container again gives the same digest. A running container
    /// is frozen while its files are read.
    ///
    /// Examples:
    ///   kiln commit web web-debug
    ///   kiln commit -m 'add curl' --author 'Ada <ada@example.com>' web web:v2
    ///   kiln commit -c 'CMD ["sh"]' -c 'ENV MODE=debug' web web-debug
    ///   kiln history web-debug
    #[command(verbatim_doc_comment)]
    Commit(CommitArgs),

    /// List the images in the store.
    ///
    /// Examples:
    ///   kiln images
    ///   kiln images -q --filter reference='shop/*'
    ///   kiln images --format json | jq -r '.[].digest'
    #[command(verbatim_doc_comment)]
    Images(ImagesArgs),

    /// Show an image, a container or a network in detail, as `docker inspect` does.
    ///
    /// An image: its manifest, config and digests (NAME is a name or `sha256:…`). A
    /// container: its state, config, limits, networks and ports (with --format json in
    /// Docker's field names: .State.ExitCode, .NetworkSettings.Ports…). A network: as
    /// `kiln network inspect`. Without --type, NAME must name one kind only.
    ///
    /// Examples:
    ///   kiln inspect web
    ///   kiln inspect --type image web --format json | jq .config.config.Cmd
    ///   kiln inspect --type container web --format json | jq .State.Status
    ///   kiln inspect --type network front
    #[command(verbatim_doc_comment)]
    Inspect(InspectArgs),

    /// Write an image to an OCI layout directory, an OCI archive or a Docker archive.
    ///
    /// Docker archives hold uncompressed layers (`docker load` and `podman load` read them);
    /// OCI formats keep the stored compression unless --compression says otherwise.
    ///
    /// Examples:
    ///   kiln export web -o web.tar                            # oci-archive
    ///   kiln export web -o web.tar --format docker-archive    # podman load -i web.tar
    ///   kiln export web -o web-oci --format oci-dir --compression gzip
    ///   skopeo inspect oci-archive:web.tar
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),

    /// Import an image: an OCI layout directory, an OCI or Docker archive, or a plain
    /// root-filesystem tarball (gzip and zstd recognized).
    ///
    /// Archives are unpacked safely (no absolute paths, `..`, escaping links or device
    /// nodes) and every blob is checked against its digest before anything is tagged.
    ///
    /// Examples:
    ///   kiln import web.tar                    # the name stored in the archive
    ///   kiln import rootfs.tar.gz --tag mybase
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),

    /// Show how an image was made: one line per step, with the size of its layer.
    History(ImageArg),

    /// Give an image another name: `kiln tag web web:v1`.
    Tag(TagArgs),

    /// Remove image names; their blobs stay until `kiln gc`.
    Rmi(RmiArgs),

    /// Remove blobs no image name or cache entry refers to, and leftovers of interrupted
    /// writes.
    ///
    /// Examples:
    ///   kiln gc            # keep the build cache
    ///   kiln gc --cache    # forget the build cache too, then collect
    #[command(verbatim_doc_comment)]
    Gc(GcArgs),

    /// Check the store: re-hash every blob, follow every reference (a blob missing, or of
    /// another size than its descriptor says), and find the files killed writers left in
    /// store/ingest (`kiln gc` removes them). Exit 1 on any problem, naming it.
    Fsck(FormatArgs),

    /// Show what kiln found on this kernel and which protections are active.
    ///
    /// Cgroups (v1, v2 or hybrid, and where), device rules (v1 files, v2 eBPF program),
    /// seccomp, overlayfs, user namespaces, netem, nftables (anti-spoofing), io_uring,
    /// openat2, pidfd, the state root and its permissions, and kiln's build. Changes
    /// nothing, not even the state root. As root it also has the kernel verify kiln's
    /// device program.
    ///
    /// Examples:
    ///   kiln info
    ///   kiln info --format json | jq .device_rules
    #[command(verbatim_doc_comment)]
    Info(FormatArgs),

    /// Show kiln's version, the git commit it was built from, the Rust compiler and the
    /// platform (also `kiln --version`).
    Version(FormatArgs),

    /// Pull an image from a registry into the store, as `docker pull` does.
    ///
    /// References are read as Docker reads them: `debian` is docker.io/library/debian:latest,
    /// `localhost:5000/app:1` names a registry, `app@sha256:…` a digest. From a multi-platform
    /// index the image for this machine is chosen (or --platform). Every blob is verified
    /// (digest and size) while it streams in; nothing is stored unless all of them check out.
    /// The image is named as Docker shows it (`debian:12`) and by digest (`debian@sha256:…`).
    ///
    /// Examples:
    ///   kiln pull debian:12
    ///   kiln pull localhost:5000/team/app:1
    ///   kiln pull --platform linux/arm64 debian:12
    ///   kiln pull debian@sha256:<digest> --format json
    #[command(verbatim_doc_comment)]
    Pull(super::registry_args::PullArgs),

    /// Push an image of the store to a registry, as `docker push` does.
    ///
    /// Blobs the registry has are skipped (a second push sends no layer), blobs kiln saw in
    /// another repository of the same registry are mounted from there, the others are
    /// uploaded, large ones in chunks. Layers go as stored (zstd unless built otherwise);
    /// --compression gzip recompresses them for older clients.
    ///
    /// Examples:
    ///   kiln push localhost:5000/app:1            # an image named so in the store
    ///   kiln push web localhost:5000/team/web:v2
    ///   kiln push --compression gzip web registry.example:5000/web:1
    #[command(verbatim_doc_comment)]
    Push(super::registry_args::PushArgs),

    /// Log in to a registry: check the credentials and save them where Docker and Podman
    /// look (~/.docker/config.json; Podman's auth.json too where it has an entry).
    ///
    /// Examples:
    ///   kiln login localhost:5000 -u me
    ///   echo "$TOKEN" | kiln login -u me --password-stdin quay.io
    #[command(verbatim_doc_comment)]
    Login(super::registry_args::LoginArgs),

    /// Remove a registry's saved credentials from Docker's and Podman's files.
    Logout(super::registry_args::LogoutArgs),

    /// Resolve every registry image kiln.kdl names (`from`, `copy … from=`, `image=`) to
    /// a digest and write kiln.lock beside it, sorted, one line per image; pins nothing
    /// uses are dropped. Builds then use the pinned digests, offline once pulled.
    ///
    /// Examples:
    ///   kiln lock
    ///   kiln lock -f examples/registry/kiln.kdl && git diff kiln.lock
    #[command(verbatim_doc_comment)]
    Lock(super::registry_args::LockArgs),

    /// Print a completion script for a shell, generated from the definition `--help` comes
    /// from (every command, flag and value kiln knows).
    ///
    /// Examples:
    ///   kiln completions bash > /etc/bash_completion.d/kiln
    ///   kiln completions zsh > "${fpath[1]}/_kiln"
    ///   kiln completions fish > ~/.config/fish/completions/kiln.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),

    /// Write kiln's man pages, generated from the definition `--help` comes from: kiln(1)
    /// on standard output, or one page per command into DIR (kiln.1, kiln-run.1,
    /// kiln-network-create.1, …), which is created if missing.
    ///
    /// Examples:
    ///   kiln man | man -l -
    ///   kiln man /usr/local/share/man/man1 && man kiln-run
    #[command(verbatim_doc_comment)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command here instead of kiln(1) on standard output.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Images to build (default: every image of the project).
    pub images: Vec<String>,

    /// Parallel jobs (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Run every step even when its result is cached.
    #[arg(long)]
    pub no_cache: bool,

    /// Print the build plan with each step's cache key and whether it is cached; build
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a JSON report of the build (steps, cache hits and misses with reasons,
    /// durations, digests) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// After building, rebuild everything from scratch in a temporary store and compare
    /// digests layer by layer; exit 1 naming the first layer and file that differ.
    #[arg(long)]
    pub verify: bool,

    /// Layer compression: zstd (default), gzip for older clients, or none.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    pub compression: CompressionArg,

    /// Output format of the final summary: `text`, or `json` (one object on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Resolve the tags of registry images again (and pull what changed) instead of
    /// using the digests pinned in kiln.lock; rewrites kiln.lock.
    #[arg(long)]
    pub update: bool,

    #[command(flatten)]
    pub net: super::registry_args::RegistryNetArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// The image to explain.
    pub image: String,

    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `kiln run`: every option of `kiln create`, and -d.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background under a supervisor; print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

impl std::ops::Deref for RunArgs {
    type Target = CreateArgs;

    fn deref(&self) -> &CreateArgs {
        &self.create
    }
}

/// The options of a new container: `kiln create`'s, and `kiln run`'s with -d. Options
/// marked "with -d" apply to a created container when `kiln start` starts it.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// With -d: restart policy (no, on-failure[:N], always, unless-stopped, on-unhealthy).
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// With -d: health check command, run in the container with /bin/sh -c; exit 0 is
    /// healthy.
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// With -d: health check GET, made from inside the container's network (no curl
    /// needed); a 2xx or 3xx status is healthy.
    #[arg(long, value_name = "URL")]
    pub health_http: Option<String>,
    /// With -d: health check TCP connect, from inside the container's network.
    #[arg(long, value_name = "HOST:PORT")]
    pub health_tcp: Option<String>,
    /// Time between health checks (default 30s).
    #[arg(long, value_name = "DUR")]
    pub health_interval: Option<String>,
    /// Time a health probe may take (default 30s).
    #[arg(long, value_name = "DUR")]
    pub health_timeout: Option<String>,
    /// Failed checks in a row that make the container unhealthy (default 3).
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// Time after a start during which failed checks do not count (default 0s).
    #[arg(long, value_name = "DUR")]
    pub health_start_period: Option<String>,
    /// Keep standard input open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal (a pty).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// A name for the container (default: a generated one).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (over the image's).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file in Docker's format: one KEY=VALUE a line
    /// (taken as is: no quotes removed), a bare KEY takes kiln's own value, # comments.
    /// Repeatable; -e wins over a file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// The container's host name (default: its short id).
    #[arg(short = 'h', long = "hostname", value_name = "HOST")]
    pub hostname: Option<String>,
    /// Working directory in the container (created if missing).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Replace the image's Entrypoint with this program (its Cmd is dropped too; give
    /// arguments after IMAGE). `--entrypoint ""` clears it.
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// User (name or uid, with an optional :group) to run as.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Mount a host path or a volume: SRC:DST[:OPTS]. SRC starting with / or . is a host
    /// path (created if missing); otherwise a volume name (`data`, or a project's
    /// `shop/data`), made on first use and filled from the image's DST. `-v /DST` alone: a
    /// new anonymous volume. OPTS: ro, rw, nocopy (volumes), a propagation (binds).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volumes: Vec<String>,
    /// Mount with Docker's long syntax: type=bind|volume|tmpfs, src (source), dst
    /// (destination, target), readonly (ro), bind-propagation, volume-nocopy,
    /// volume-label, tmpfs-size, tmpfs-mode. A missing bind source is an error.
    #[arg(long = "mount", value_name = "type=…,src=…,dst=…")]
    pub mounts: Vec<String>,
    /// Set a label on the container (`K=V`, or `K` for an empty value), over the image's
    /// labels; `kiln ps --format json` shows them, `kiln ps --filter label=K=V` selects.
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Read labels from a file: one K=V a line; blank lines and `#` comments are skipped.
    /// --label goes over it.
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_files: Vec<std::path::PathBuf>,
    /// Memory limit (`64MiB`, `1G`, or bytes).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit, in CPUs (`0.5`).
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// Most processes at once (-1: unlimited).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// `none` (default: a private network with only `lo`), `host` (the machine's), or the
    /// name of a kiln network (`kiln network create`): an `eth0` with an address on it, DNS
    /// by container name, a default route through its gateway.
    #[arg(long, value_name = "NETWORK", default_value = "none")]
    pub network: String,
    /// The container's address on --network (default: allocated, the same for the same
    /// name every time).
    #[arg(long, value_name = "ADDR", requires = "network")]
    pub ip: Option<std::net::IpAddr>,
    /// Another name DNS answers with the container's address on --network.
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_aliases: Vec<String>,
    /// Add a line to the container's /etc/hosts: NAME:IP (`db:10.0.0.5`,
    /// `v6:[2001:db8::1]`, or NAME=IP). `NAME:host-gateway` is the gateway of its first
    /// kiln network (where kiln's DNS and published ports' proxies answer it).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// A DNS server, as Docker's: without a kiln network, a nameserver line of the
    /// container's /etc/resolv.conf (default: the machine's). On a kiln network the
    /// container asks kiln's DNS server, which then sends the names it does not know
    /// (not a container's) to these servers instead of the machine's: only on a network
    /// with egress (one without asks no other server: refused).
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// A search domain for the container's /etc/resolv.conf (after kiln's project domain).
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// A resolver option for the container's /etc/resolv.conf (`ndots:2`, `edns0`,
    /// `timeout:1`).
    #[arg(long = "dns-option", value_name = "OPT")]
    pub dns_options: Vec<String>,
    /// Join --network on declared host NAME of a project with hosts that is up here (each
    /// host simulated by `kiln up`, or this machine's by `kiln up --host NAME`), e.g.
    /// `--host m1 --network two-hosts/mesh`. On an overlay the address comes from NAME's
    /// range for containers started by hand (`kiln up --dry-run` shows it), and the
    /// containers on the other hosts reach it: ARP for it is flooded to every host.
    #[arg(long, value_name = "NAME", requires = "network")]
    pub host: Option<String>,
    /// Publish a port: IP:HOST on the machine reaches PORT in the container (a userspace
    /// proxy; needs --network NAME). IP is 127.0.0.1 unless given, and must be an address
    /// of this machine (IPv6 in brackets: `[::1]:8080:80`); `IP::PORT` picks a free host
    /// port on IP, which `kiln port` shows; `PORT` alone, a free port on 127.0.0.1.
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:PORT[/udp]")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes (its EXPOSE, `expose` in kiln.kdl) that -p
    /// does not, each on a free port of 127.0.0.1 (`kiln port` shows which).
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// The most connections (UDP: client sessions) each published port's proxy holds at
    /// once; the next client is reset (default 4096).
    #[arg(long, value_name = "N", requires = "publish")]
    pub publish_max_connections: Option<usize>,
    /// Close a published port's connection (UDP: session) after this long without a byte
    /// either way, e.g. 30s, 10m (default 1h for TCP, 60s for UDP).
    #[arg(long, value_name = "DURATION", requires = "publish")]
    pub publish_idle_timeout: Option<String>,
    /// Security options. `seccomp=unconfined` runs without a seccomp filter;
    /// `seccomp=PROFILE.json` uses a profile in Docker's JSON format instead of kiln's
    /// default allow-list; `no-new-privileges` is always on.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opts: Vec<String>,
    /// With -d: cap the container's log, as Docker's json-file and local drivers do:
    /// `max-size=SIZE` (10m, 512k, 1g; -1: no cap) per file, `max-file=N` files kept,
    /// the live one included; the oldest is deleted. Default: max-size=10m, max-file=3.
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    #[command(flatten)]
    pub options: ContainerOptionArgs,
    /// Print each kernel-level step as it happens (for learning how containers work).
    #[arg(long)]
    pub trace: bool,
    /// Pull the image from its registry first, as `docker run --pull`: `missing` when the
    /// store has no such image, `always` every time, `never` (the store only). Progress
    /// goes to standard error.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// The image (a name or a manifest digest).
    pub image: String,
    /// The command and its arguments (default: the image's entrypoint and cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The filesystem and security options `kiln run` and `kiln bundle` share.
#[derive(Debug, Args)]
pub struct ContainerOptionArgs {
    /// Mount the container's root filesystem read-only. /dev, /proc, /dev/shm, --tmpfs
    /// mounts and volumes stay writable, as do /etc/resolv.conf and /etc/hosts.
    #[arg(long)]
    pub read_only: bool,
    /// Mount a fresh tmpfs: DIR or DIR:OPTIONS (`/run:size=64m,mode=1777,exec`). Docker's
    /// defaults apply: noexec, nosuid, nodev, no size limit but the kernel's (half the RAM).
    #[arg(long, value_name = "DIR[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Add a Linux capability to Docker's default set (`NET_ADMIN`, `CAP_SYS_TIME`, or
    /// `ALL`: every capability kiln holds itself).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the set (`ALL` keeps only the --cap-add ones).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// A resource limit: NAME=SOFT[:HARD] (`nofile=1024:2048`, `nproc=64`; -1 for none).
    /// Never above kiln's own hard limit: raising one needs CAP_SYS_RESOURCE.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Set a namespaced kernel parameter in the container (`net.ipv4.ip_forward=1`,
    /// `kernel.shmmax=…`): net.* (not with --network host), kernel.shm*, kernel.msg*,
    /// kernel.sem, fs.mqueue.*, kernel.domainname. Written in the container's own /proc
    /// before its command starts; the machine's values never change.
    #[arg(long, value_name = "NAME=VALUE")]
    pub sysctl: Vec<String>,
    /// The signal `kiln stop` sends first (`SIGQUIT`, `QUIT`, `3`); default: the image's
    /// STOPSIGNAL, else SIGTERM.
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `kiln stop`, `restart`, `down` and rollouts wait after the stop signal
    /// before SIGKILL, unless given -t (default 10).
    #[arg(long, value_name = "SECS")]
    pub stop_timeout: Option<u64>,
    /// Give the container the machine, as Docker's --privileged: every capability kiln
    /// holds (--cap-add/--cap-drop do not apply), no seccomp filter (unless
    /// --security-opt names a profile), every device node of the host in its /dev and
    /// allowed by its cgroup, /sys and /sys/fs/cgroup read-write, no masked or read-only
    /// paths. Its namespaces stay its own; no_new_privs stays on. Only for what needs it.
    #[arg(long)]
    pub privileged: bool,
    /// Give the container a device of the host: HOST[:CONTAINER[:PERMS]]
    /// (`/dev/fuse`, `/dev/sdc:/dev/xvdc:r`). The node is made at CONTAINER with the
    /// host's type and numbers; its cgroup lets the container read (r), write (w) or
    /// mknod (m) it, default rwm.
    #[arg(long, value_name = "HOST[:CONTAINER[:PERMS]]")]
    pub device: Vec<String>,
    /// Run kiln's own small init as pid 1, the command as its child (as Docker's --init,
    /// tini): it reaps the orphans the command leaves (no zombies), forwards the signals
    /// it gets (`kiln stop`'s SIGTERM reaches a shell or program that never set a handler,
    /// which as pid 1 it would not) and exits with the command's status (128+N when
    /// signal N ended it). The init runs from a sealed in-memory copy: nothing in the
    /// container leads to a file of the host.
    #[arg(long)]
    pub init: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Start the command and return; its output is discarded.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep standard input open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal (a pty).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (over the container's).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// User (name or uid, with an optional :group) to run as (default: the container's).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Working directory in the container (default: the container's; it must exist).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Print each kernel-level step as it happens.
    #[arg(long)]
    pub trace: bool,
    /// The container, by name or (a prefix of its) id.
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Run the container in the foreground: its output on kiln's, its exit code kiln's
    /// (one container only).
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Give the container kiln's standard input too (implies -a).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container, by name or (a prefix of its) id.
    pub container: String,
    /// Only this port of the container: PORT or PORT/tcp, PORT/udp.
    #[arg(value_name = "PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container, by name or (a prefix of its) id.
    pub container: String,
    /// `ps` options: `-o LIST` (`-ef`, Docker's default, is taken too).
    #[arg(
        value_name = "PS OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep the source's uid and gid (archive mode); otherwise copies are root's.
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow a symbolic link SRC names (copy what it points to, not the link).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Print nothing on success (kiln prints a summary on a terminal only).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:PATH, a local path, or `-` (a tar stream on stdin).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// CONTAINER:PATH, a local path, or `-` (a tar stream on stdout).
    #[arg(value_name = "DEST")]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container, not only running ones.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Only the containers of this project (`kiln up`).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Print only the containers' short ids, one a line (as `docker ps -q`; for
    /// `kiln rm -f $(kiln ps -aq)`). Takes the place of --format.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only containers that match, as Docker's: `id=`, `name=` (any part of the name; a
    /// regular expression: `name=^web$`), `status=` (created, running, restarting,
    /// exited; a status filter looks at every container, as -a does), `label=KEY` or
    /// `label=KEY=VALUE`, `project=`, `ancestor=` (the image, or one built on it),
    /// `network=`. Repeated: values of one key are alternatives, different keys and every
    /// label must all match.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Also remove the anonymous volumes the containers made (`-v /path`, an image's
    /// `VOLUME`s); named volumes stay, as in Docker. One another container uses stays too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container has exited (or --until has passed).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines since a time: a duration before now (10m, 1h30m) or RFC 3339.
    #[arg(long, value_name = "DURATION|RFC3339", conflicts_with = "project")]
    pub since: Option<String>,
    /// Only lines until a time: a duration before now (10m, 1h30m) or RFC 3339. With -f,
    /// following ends once that time has passed.
    #[arg(long, value_name = "DURATION|RFC3339", conflicts_with = "project")]
    pub until: Option<String>,
    /// Only the last N lines written so far (`all`: every line, the default); with -f,
    /// then what comes next.
    #[arg(
        short = 'n',
        long,
        value_name = "N|all",
        value_parser = parse_tail,
        conflicts_with = "project"
    )]
    pub tail: Option<Tail>,
    /// Prefix each line with its time (RFC 3339, nanoseconds).
    #[arg(short = 't', long, conflicts_with = "project")]
    pub timestamps: bool,
    /// The output of a whole project (`kiln up`): every container's lines (or those named),
    /// each prefixed by its container's name.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// The container, by name or (a prefix of its) id; with --project, any number of them.
    #[arg(required_unless_present = "project")]
    pub containers: Vec<String>,
}

/// `kiln run --pull`: when to pull the image from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// When the store has no such image.
    Missing,
    /// Every time (the tag may have moved).
    Always,
    /// Never: the store's image, or an error.
    Never,
}

/// `--tail`: a number of lines, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Last(usize),
}

fn parse_tail(text: &str) -> Result<Tail, String> {
    if text == "all" {
        return Ok(Tail::All);
    }
    text.parse()
        .map(Tail::Last)
        .map_err(|_| format!("`{text}` is not a number of lines or `all`"))
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time", value_name = "SECS")]
    pub time: Option<u64>,
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a name (TERM, SIGKILL) or a number.
    #[arg(
        short = 's',
        long = "signal",
        value_name = "SIG",
        default_value = "KILL"
    )]
    pub signal: String,
    /// Containers, by name or (a prefix of their) id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (nothing happens if it exists); print its name.
    Create(VolumeCreateArgs),
    /// List volumes, with their project.
    #[command(alias = "list")]
    Ls(VolumeListArgs),
    /// Show volumes: name, project, mountpoint, created, labels, the containers using them.
    Inspect(VolumeInspectArgs),
    /// Remove volumes. One a container uses (running or not) is refused, as in Docker.
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove the volumes no container uses: anonymous ones, or all with --all.
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// The name: `data`, or `PROJECT/data` for a project's (default: a generated one).
    pub name: Option<String>,
    /// Set a label on the volume (`K=V`, or `K` for an empty value).
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// The volume driver; kiln has one, `local` (directories under the state root).
    #[arg(short = 'd', long, value_name = "DRIVER", default_value = "local")]
    pub driver: String,
    /// Driver options: refused, kiln's `local` driver takes none.
    #[arg(short = 'o', long = "opt", value_name = "K=V")]
    pub opts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeListArgs {
    /// Only volume names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Keep the volumes that match: dangling=true|false (unused or used), name=TEXT,
    /// label=K, label=K=V, label!=K[=V]. Repeat to narrow.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Volumes: `data` or `PROJECT/data`.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Output format: `json` (the default, as Docker's) or `text`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Do not fail on a volume that does not exist (a used one is still refused).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Volumes: `data` or `PROJECT/data`.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove every unused volume, named ones too (default: anonymous ones only).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only the volumes that match: label=K, label=K=V, label!=K[=V], all=true.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Do not ask for confirmation (kiln never asks: accepted for Docker's scripts).
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the disk used by images, containers, local volumes and the build cache: how
    /// many, how many in use (ACTIVE), their size, and what `kiln system prune` (with -a
    /// and --volumes) could free (RECLAIMABLE). Images count their compressed blobs, a blob
    /// shared by two images once, plus blobs nothing references any more.
    Df(SystemDfArgs),
    /// Remove what nothing uses, as `docker system prune`: stopped containers, networks no
    /// container is on, dangling image data, the build cache no image shares; with -a also
    /// every image no container was made from and the whole build cache; with --volumes
    /// also anonymous volumes no container uses. Never removes a running container, the
    /// image of any container, a network with members or a volume a container names. Asks
    /// first unless -f.
    Prune(SystemPruneArgs),
}

#[derive(Debug, Args)]
pub struct SystemDfArgs {
    /// One line per image, container, volume and build cache entry too.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Also every image no container was made from (not only dangling data), and the whole
    /// build cache.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Also anonymous volumes no container uses (named volumes stay, as in Docker 23+:
    /// `kiln volume prune -a` takes those).
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network: a bridge with the subnet's first address as gateway.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "ls")]
    List(NetworkListArgs),
    /// Show a network: subnet, gateway, bridge, members with addresses and counters.
    Inspect(NetworkInspectArgs),
    /// Remove networks (refused while containers are attached).
    Rm(NetworkRmArgs),
    /// Run a host command inside the kiln host namespace, where the bridges live.
    Exec(NetworkExecArgs),
    /// List the links of running projects: both ends, addresses, the impairment in force,
    /// which engine carries it (the kernel's netem or kiln's own) and live counters.
    ///
    /// Examples:
    ///   kiln network links
    ///   kiln network links --format json     # per direction: sent, lost, duplicated, queued…
    #[command(verbatim_doc_comment)]
    Links(NetworkListArgs),
    /// Change the impairment of a link (both ends), or of a container's impaired
    /// attachment to a network, on a running topology. The settings replace the ones in
    /// force (what is not given is off), as `tc qdisc replace` does.
    ///
    /// Examples:
    ///   kiln network impair r1:eth1 --delay 50ms --jitter 5ms --loss 2%
    ///   kiln network impair r1:eth1 --delay 30ms --jitter 10ms --distribution normal
    ///   kiln network impair r1:eth1 --gilbert-elliott 1% 25%     # losses in bursts
    ///   kiln network impair r1:eth1 --rate 1mbit --engine userspace
    ///   kiln network impair web:eth0 --delay 5ms                  # an impaired attachment
    ///   kiln network impair r1:eth1 --clear
    ///   kiln network impair r1:eth1 --down      # pull the cable at r1's end
    ///   kiln network impair r1:eth1 --up        # and plug it back
    #[command(verbatim_doc_comment)]
    Impair(Box<NetworkImpairArgs>),
}

#[derive(Debug, Args)]
pub struct NetworkImpairArgs {
    /// Either end of the link, as `container:interface` (or a container's interface on
    /// a network, `web:eth0`, when kiln.kdl impairs it).
    pub endpoint: String,
    /// Added delay, each way (`20ms`).
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Variation of the delay (`5ms`).
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// How the jitter spreads (with --jitter).
    #[arg(long, value_name = "NAME", value_parser = ["uniform", "normal", "pareto", "paretonormal"])]
    pub distribution: Option<String>,
    /// Weight of the previous random delay in the next (`25%`, with --jitter).
    #[arg(long, value_name = "PERCENT")]
    pub delay_correlation: Option<String>,
    /// Packets dropped (`1%`).
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<String>,
    /// Weight of the previous loss draw in the next (`25%`, with --loss).
    #[arg(long, value_name = "PERCENT")]
    pub loss_correlation: Option<String>,
    /// Losses in bursts, Gilbert-Elliott: P [R [BAD-LOSS [GOOD-LOSS]]] (tc's `loss gemodel`).
    #[arg(long, num_args = 1..=4, value_names = ["P", "R", "BAD", "GOOD"], conflicts_with_all = ["loss", "four_state"])]
    pub gilbert_elliott: Option<Vec<String>>,
    /// Losses in bursts, 4-state model: P13 [P31 [P32 [P23 [P14]]]] (tc's `loss state`).
    #[arg(long, num_args = 1..=5, value_names = ["P13", "P31", "P32", "P23", "P14"], conflicts_with = "loss")]
    pub four_state: Option<Vec<String>>,
    /// Bandwidth (`10mbit`).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Bytes the rate limiter adds to each packet (negative: takes away).
    #[arg(
        long,
        value_name = "BYTES",
        allow_hyphen_values = true,
        requires = "rate"
    )]
    pub packet_overhead: Option<i32>,
    /// Packets travel in cells of this many bytes (with --rate).
    #[arg(long, value_name = "BYTES", requires = "rate")]
    pub cell_size: Option<u32>,
    /// Bytes added to each cell (with --cell-size).
    #[arg(
        long,
        value_name = "BYTES",
        allow_hyphen_values = true,
        requires = "cell_size"
    )]
    pub cell_overhead: Option<i32>,
    /// Packets with a flipped bit (`0.1%`).
    #[arg(long, value_name = "PERCENT")]
    pub corrupt: Option<String>,
    /// Packets sent twice (`1%`).
    #[arg(long, value_name = "PERCENT")]
    pub duplicate: Option<String>,
    /// Packets sent out of order (`1%`, with --delay).
    #[arg(long, value_name = "PERCENT")]
    pub reorder: Option<String>,
    /// Only one packet in GAP may be reordered (with --reorder).
    #[arg(long, value_name = "GAP", requires = "reorder")]
    pub gap: Option<u32>,
    /// Packets the queue holds (default 1000).
    #[arg(long, value_name = "PACKETS")]
    pub limit: Option<u32>,
    /// Seed of the random numbers: the same seed, the same losses and delays.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Who carries the impairment: `kernel` (netem), `userspace` (kiln's engine) or
    /// `auto`; a link moves to it (its interfaces are made again).
    #[arg(long, value_name = "ENGINE", value_parser = ["auto", "kernel", "userspace"])]
    pub engine: Option<String>,
    /// Remove every impairment of the link.
    #[arg(long, conflicts_with_all = ["delay", "jitter", "distribution", "delay_correlation", "loss", "loss_correlation", "gilbert_elliott", "four_state", "rate", "corrupt", "duplicate", "reorder", "gap", "limit", "seed"])]
    pub clear: bool,
    /// Carrier off: the interface goes down in its container, as if its cable were pulled
    /// (the far end of a link loses its carrier; nothing passes either way). Any interface
    /// of a running container: a link's end or an attachment to a network. The impairment
    /// is kept.
    #[arg(long, conflicts_with_all = ["up", "clear", "engine", "delay", "jitter", "distribution", "delay_correlation", "loss", "loss_correlation", "gilbert_elliott", "four_state", "rate", "corrupt", "duplicate", "reorder", "gap", "limit", "seed"])]
    pub down: bool,
    /// Carrier on again after --down: the interface comes up with its addresses and
    /// connected routes (routes added by hand are not restored).
    #[arg(long, conflicts_with_all = ["clear", "engine", "delay", "jitter", "distribution", "delay_correlation", "loss", "loss_correlation", "gilbert_elliott", "four_state", "rate", "corrupt", "duplicate", "reorder", "gap", "limit", "seed"])]
    pub up: bool,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// The network's name.
    pub name: String,
    /// Its addresses, e.g. 10.89.0.0/24 (default: the first free /24 of 10.89.0.0/16).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<ipnetwork::IpNetwork>,
    /// No default route through this network's gateway.
    #[arg(long, conflicts_with = "egress")]
    pub internal: bool,
    /// Its containers reach the world outside the machine through a userspace path
    /// (pasta, from the `passt` package): no route, address or firewall rule is added to the
    /// machine's namespace, and its DNS forwards names kiln does not know to the machine's
    /// resolvers. Without it a network is closed: nothing leaves kiln's topology.
    #[arg(long)]
    pub egress: bool,
}

#[derive(Debug, Args)]
pub struct NetworkListArgs {
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// The network.
    pub name: String,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// The networks.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkExecArgs {
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// The container's id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Security options, as for `kiln run` (`seccomp=unconfined`, `seccomp=PROFILE.json`).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opts: Vec<String>,
    #[command(flatten)]
    pub options: ContainerOptionArgs,
    /// The image.
    pub image: String,
    /// The bundle directory (created; its rootfs must be empty).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one reading and exit (CPU % from two samples 300 ms apart).
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: `table` for people, `json` for scripts (an array per reading).
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,
    /// Containers, by name or (a prefix of their) id (default: every running one).
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A message, kept in the new history entry.
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// The image's author (`Name <email>`).
    #[arg(short = 'a', long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the config: CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, VOLUME, WORKDIR or STOPSIGNAL. Repeat for several.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Compression of the new layer: zstd (default), gzip for older clients, or none.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    pub compression: CompressionArg,
    /// The container, by name or (a prefix of its) id.
    pub container: String,
    /// The name of the new image.
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print only the images' short digests, one a line (the DIGEST column, as
    /// `docker images -q` prints IDs). Takes the place of --format.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only images that match, as Docker's: `reference=` (a glob over the name: `web*`,
    /// `team/*:1`), `label=KEY` or `label=KEY=VALUE`, `dangling=true|false` (kiln lists
    /// named images only, so `true` matches none: unnamed ones are `kiln system prune`'s).
    /// Values of one key are alternatives; different keys and every label must all match.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format: `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ImageArg {
    /// An image name or manifest digest.
    pub image: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image (a name or a manifest digest), a container (`PROJECT/NAME`, a name, or a
    /// prefix of its id), a network or a volume.
    #[arg(value_name = "NAME")]
    pub image: String,

    /// What NAME is; without it, the one kind NAME names (several: an error naming them).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<InspectKind>,

    /// Output format: `text` for people, `json` for scripts (in full; a container's with
    /// Docker's field names).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectKind {
    Image,
    Container,
    Network,
    Volume,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The image (a name or a manifest digest).
    pub image: String,

    /// Where to write: a file, or a directory for `oci-dir` (absent or empty).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,

    /// The archive format.
    #[arg(long, value_enum, default_value_t = ExportFormat::OciArchive)]
    pub format: ExportFormat,

    /// Layer compression for OCI formats (default: as stored, zstd unless built otherwise).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,

    /// The image's name inside the archive (default: IMAGE).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    OciDir,
    OciArchive,
    DockerArchive,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive or directory to import.
    pub path: PathBuf,

    /// Name for the image (required for root-filesystem tarballs; archives default to the
    /// name they carry).
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to name (a name or a manifest digest).
    pub source: String,
    /// The new name.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Names to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Also forget the build cache, so cached layers no image uses are collected.
    #[arg(long)]
    pub cache: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Services to bring up, with what they depend on (default: all).
    pub services: Vec<String>,
    /// Return once everything is started (and healthy where health is declared).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Seconds to wait for each dependency condition, health check and job.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Print the plan — which host runs each container (placement by the declared cpus and
    /// memory), what each host holds, the networks — and build or start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// This machine is the declared host NAME (`host "NAME" address=…` in kiln.kdl): bring
    /// up only the containers placed on it. Its overlay endpoints send VXLAN (UDP 4789)
    /// from NAME's declared address, which this machine must hold, to the other hosts'
    /// addresses through the machine's own network; DNS answers every declared container's
    /// name, whichever host runs it. Run it on every host. Without it, every declared host
    /// is simulated on this machine.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Tests to run, by name (default: all, in the order kiln.kdl declares them).
    pub names: Vec<String>,
    /// Output format: `text` for people (each assertion as it completes), `json` for
    /// scripts and CI (one object on stdout at the end).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Also write a JUnit XML report to FILE (one testcase per assertion).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Test the containers that run now: do not build or start the project first.
    #[arg(long)]
    pub no_up: bool,
    /// Seconds to wait for each dependency condition, health check and job while the
    /// project comes up.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// This machine is the declared host NAME: bring up its share (as `kiln up --host`)
    /// and check only the assertions whose `from` (or `exec`) container runs on it; the
    /// others are left out, and said so (run `kiln test --host` on their host).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// Remove the project's named volumes too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Seconds each container gets to stop before SIGKILL (default: its own stop timeout,
    /// `stop-timeout` in kiln.kdl, else 10).
    #[arg(short = 't', long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Take down only the share of declared host NAME (what `kiln up --host NAME` brought
    /// up on this machine, or one simulated host): its containers, networks and overlay
    /// endpoints. What the project shares goes with its last host.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    /// The service (`container` node) whose instances go back to their previous version.
    pub service: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub project: ProjectArg,

    /// Output format: `text` for people, `json` for editors and CI (one object on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Print the resolved project (imports applied, defaults filled) as JSON on stdout.
    #[arg(long)]
    pub print: bool,

    /// Do not check that `copy` sources and volume paths exist on disk.
    #[arg(long)]
    pub no_path_checks: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub project: ProjectArg,

    /// Output format: `dot` for Graphviz, `mermaid` for a Mermaid flowchart, `json` for
    /// scripts (nodes, edges and clusters).
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,

    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}
