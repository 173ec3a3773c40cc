// hpvm-lease-exec: holds a guest's sanlock lease for the lifetime of its QEMU.
//
// libvirt's model (src/locking/lock_driver_sanlock.c): the lease is acquired between fork and exec
// of QEMU, on a connection registered by the process that becomes QEMU, so sanlock ties the lease
// to QEMU's pid: it is released when QEMU exits (the registered connection closes), and sanlock's
// recovery, should this host lose its host lease, kills QEMU itself. QEMU's own -daemonize would
// fork after the lease was taken and leave it registered to a pid that has exited; so QEMU runs
// without -daemonize and this helper daemonizes instead:
//
//   hpvm-lease-exec LOCKSPACE RESOURCE PATH OFFSET RUNFOLDER WAIT_SECONDS -- QEMU ARG...
//   hpvm-lease-exec LOCKSPACE RESOURCE PATH OFFSET RUNFOLDER incoming -- QEMU ARG...
//
// With the word `incoming` in place of WAIT_SECONDS (the target of an online migration, QEMU run
// with `-incoming`), the child registers with the sanlock daemon and execs QEMU WITHOUT acquiring
// RESOURCE: the guest still runs on the source host, which holds the lease. At the hand-over the
// source releases the lease and this host acquires it on behalf of QEMU's pid with the lease
// version the source returned (sanlock_acquire with a pid and SANLK_RES_LVER, as libvirt's
// driver does), before the guest continues. LOCKSPACE, RESOURCE, PATH and OFFSET are checked but
// only name the lease in messages then.
//
// The first process forks; the child starts a new session, registers with the sanlock daemon
// (SANLOCK_RUN_DIR picks it), acquires RESOURCE at OFFSET of PATH in LOCKSPACE, and execs QEMU
// keeping the registered socket open (it is not close-on-exec). The first process exits once
// QEMU holds RUNFOLDER/pid and its status monitor accepts a connection, as QEMU's -daemonize
// parent would. Every value arrives as an argument vector; nothing goes through a shell.
//
// Exit status of the first process: 0 QEMU is running and holds the lease (incoming: is registered
// and holds none); 10 another host holds
// the lease and renews its host lease (stderr: "held by host N"); 11 the owner's lease did not
// expire within WAIT_SECONDS; 12 no sanlock daemon or this host has not joined the lockspace;
// 13 another sanlock failure; 1 QEMU failed to start; 64 bad arguments.
#define _GNU_SOURCE
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(int fd, const char *text) {
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(fd, text, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        text += n;
        left -= (size_t)n;
    }
}

static uint64_t owner_of(struct sanlk_resource *res) {
    struct sanlk_host *hosts = NULL;
    int count = 0;
    uint64_t owner = 0;
    if (sanlock_read_resource_owners(res, 0, &hosts, &count) == 0 && hosts != NULL) {
        for (int i = 0; i < count; i++) {
            if (hosts[i].timestamp != 0) { owner = hosts[i].host_id; break; }
        }
    }
    free(hosts);
    return owner;
}

/// The child: register, acquire (unless `incoming`), exec. Reports one line on `report`: "A"
/// acquired or "R" registered only (then exec), "H rc owner", "T owner", "D rc", "S rc", or
/// "X errno" when exec failed.
static void child(int report, const char *lockspace, const char *name, const char *path, uint64_t offset,
                  double wait_seconds, int incoming, char **program) {
    setsid();
    struct sanlk_resource *res = calloc(1, sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk));
    if (res == NULL) _exit(13);
    strncpy(res->lockspace_name, lockspace, SANLK_NAME_LEN);
    strncpy(res->name, name, SANLK_NAME_LEN);
    res->num_disks = 1;
    strncpy(res->disks[0].path, path, SANLK_PATH_LEN - 1);
    res->disks[0].offset = offset;
    char line[128];
    int sock = sanlock_register();
    if (sock < 0) {
        snprintf(line, sizeof line, "D %d\n", sock);
        say(report, line);
        _exit(12);
    }
    if (incoming) {
        // Registered, nothing acquired: the socket stays open across exec, so the daemon knows
        // QEMU's pid and can acquire the lease for it at the hand-over.
        free(res);
        say(report, "R\n");
        execv(program[0], program);
        snprintf(line, sizeof line, "X %d\n", errno);
        say(report, line);
        _exit(127);
    }
    double deadline = now_seconds() + wait_seconds;
    for (;;) {
        struct sanlk_resource *list[1] = { res };
        int rc = sanlock_acquire(sock, -1, SANLK_ACQUIRE_OWNER_NOWAIT, 1, list, NULL);
        if (rc == 0) break;
        if (rc == SANLK_ACQUIRE_OWNED_RETRY && now_seconds() < deadline) {
            usleep(500000);
            continue;
        }
        if (rc == SANLK_ACQUIRE_OWNED_RETRY) {
            snprintf(line, sizeof line, "T %llu\n", (unsigned long long)owner_of(res));
            say(report, line);
            _exit(11);
        }
        if (rc == SANLK_ACQUIRE_IDLIVE || rc == SANLK_ACQUIRE_OWNED || rc == SANLK_ACQUIRE_OTHER) {
            snprintf(line, sizeof line, "H %d %llu\n", rc, (unsigned long long)owner_of(res));
            say(report, line);
            _exit(10);
        }
        snprintf(line, sizeof line, "%c %d\n", (rc == SANLK_ACQUIRE_LOCKSPACE || rc == -ECONNREFUSED) ? 'D' : 'S', rc);
        say(report, line);
        _exit(rc == SANLK_ACQUIRE_LOCKSPACE ? 12 : 13);
    }
    free(res);
    say(report, "A\n");
    execv(program[0], program);
    snprintf(line, sizeof line, "X %d\n", errno);
    say(report, line);
    _exit(127);
}

/// Whether `pid` holds the write lock of the pidfile (QEMU's liveness, as RunFolder reads it).
static int holds_pidfile(const char *pidfile, pid_t pid) {
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    struct flock probe;
    memset(&probe, 0, sizeof probe);
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    int held = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK && probe.l_pid == pid;
    close(fd);
    return held;
}

static int accepts(const char *socket_path) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (strlen(socket_path) >= sizeof address.sun_path) return 0;
    strcpy(address.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 9 || strcmp(argv[7], "--") != 0) {
        say(2, "usage: hpvm-lease-exec LOCKSPACE RESOURCE PATH OFFSET RUNFOLDER WAIT_SECONDS|incoming -- PROGRAM [ARG...]\n");
        return 64;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long offset = strtoull(argv[4], &end, 10);
    if (errno != 0 || end == argv[4] || *end != 0) { say(2, "hpvm-lease-exec: bad offset\n"); return 64; }
    int incoming = strcmp(argv[6], "incoming") == 0;
    double wait_seconds = incoming ? 0 : strtod(argv[6], &end);
    if (!incoming && (end == argv[6] || *end != 0 || wait_seconds < 0 || wait_seconds > 3600)) {
        say(2, "hpvm-lease-exec: bad wait\n");
        return 64;
    }
    char pidfile[4096], status_socket[4096];
    if (snprintf(pidfile, sizeof pidfile, "%s/pid", argv[5]) >= (int)sizeof pidfile
        || snprintf(status_socket, sizeof status_socket, "%s/qmp-status", argv[5]) >= (int)sizeof status_socket) {
        say(2, "hpvm-lease-exec: run folder path too long\n");
        return 64;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) { perror("hpvm-lease-exec: pipe"); return 13; }
    pid_t pid = fork();
    if (pid < 0) { perror("hpvm-lease-exec: fork"); return 13; }
    if (pid == 0) {
        close(report[0]);
        child(report[1], argv[1], argv[2], argv[3], offset, wait_seconds, incoming, argv + 8);
    }
    close(report[1]);
    char line[128];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(report[0], line + used, sizeof line - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += (size_t)n;
        if (used >= sizeof line - 1) break;
    }
    line[used] = 0;
    close(report[0]);
    char message[512];
    if ((line[0] != 'A' && line[0] != 'R') || strchr(line, 'X') != NULL) {
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 13;
        if (line[0] == 'H') {
            int rc = 0;
            unsigned long long owner = 0;
            sscanf(line, "H %d %llu", &rc, &owner);
            snprintf(message, sizeof message, "hpvm-lease-exec: lease %s held by host %llu (sanlock %d)\n", argv[2], owner, rc);
        } else if (line[0] == 'T') {
            snprintf(message, sizeof message, "hpvm-lease-exec: lease %s still held after %s s: %s", argv[2], argv[6], line + 2);
        } else if (line[0] == 'D' || line[0] == 'S') {
            snprintf(message, sizeof message, "hpvm-lease-exec: sanlock refused lease %s: %s", argv[2], line + 2);
        } else if (strchr(line, 'X') != NULL) {
            snprintf(message, sizeof message, "hpvm-lease-exec: cannot run %s: %s\n", argv[8], strerror(atoi(strchr(line, 'X') + 2)));
            code = 1;
        } else {
            snprintf(message, sizeof message, "hpvm-lease-exec: the lease holder ended without a word\n");
            code = 13;
        }
        say(2, message);
        return code;
    }
    // QEMU runs and holds the lease (incoming: is registered): wait until it is ready, as its
    // -daemonize parent would.
    double deadline = now_seconds() + 60;
    while (now_seconds() < deadline) {
        int status = 0;
        pid_t ended = waitpid(pid, &status, WNOHANG);
        if (ended == pid) {
            say(2, "hpvm-lease-exec: QEMU exited while starting\n");
            return 1;
        }
        if (holds_pidfile(pidfile, pid) && accepts(status_socket)) return 0;
        usleep(5000);
    }
    say(2, "hpvm-lease-exec: QEMU did not become ready within 60 s\n");
    return 1;
}
