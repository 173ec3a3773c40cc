/* The bare side of bench (j): what a hand-written start of QEMU does, without hpvm.
 *
 *   qmp-ready start ARGS-FILE   runs the QEMU program and arguments listed in ARGS-FILE (NUL-separated,
 *                               as /proc/PID/cmdline has them; they name `-daemonize`), waits for its
 *                               first process to exit 0, then connects to ./qmp-status, negotiates QMP
 *                               and waits for query-status's answer: QEMU started and its monitor ready.
 *   qmp-ready quit              asks the QEMU listening on ./qmp to quit, and waits until it hangs up
 *                               (nothing listening: nothing to do).
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) return -1;
    return fd;
}

/* Reads until a line holding `word` has arrived; 0 on success. */
static int read_until(int fd, const char *word) {
    static char buffer[65536];
    static size_t used = 0;
    for (;;) {
        char *newline;
        while ((newline = memchr(buffer, '\n', used)) != NULL) {
            *newline = 0;
            int found = strstr(buffer, word) != NULL;
            size_t consumed = (size_t)(newline - buffer) + 1;
            memmove(buffer, newline + 1, used - consumed);
            used -= consumed;
            if (found) return 0;
        }
        if (used == sizeof(buffer)) return -1;
        ssize_t n = read(fd, buffer + used, sizeof(buffer) - used);
        if (n <= 0) return -1;
        used += (size_t)n;
    }
}

static int say(int fd, const char *text) { return write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1; }

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "quit") == 0) {
        int fd = connect_to("qmp");
        if (fd < 0) return 0;
        char sink[4096];
        if (read_until(fd, "QMP") || say(fd, "{\"execute\":\"qmp_capabilities\"}\n") || say(fd, "{\"execute\":\"quit\"}\n")) return 1;
        while (read(fd, sink, sizeof(sink)) > 0) {}
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "start") != 0) {
        fprintf(stderr, "usage: qmp-ready start ARGS-FILE | qmp-ready quit\n");
        return 64;
    }
    int file = open(argv[2], O_RDONLY | O_CLOEXEC);
    struct stat status;
    if (file < 0 || fstat(file, &status) != 0) return 1;
    char *text = malloc((size_t)status.st_size + 1);
    if (read(file, text, (size_t)status.st_size) != status.st_size) return 1;
    text[status.st_size] = 0;
    char *arguments[512];
    int count = 0;
    for (char *p = text; p < text + status.st_size && count < 511; p += strlen(p) + 1) arguments[count++] = p;
    arguments[count] = NULL;
    pid_t pid;
    if (posix_spawn(&pid, arguments[0], NULL, NULL, arguments, environ) != 0) return 1;
    int code;
    if (waitpid(pid, &code, 0) != pid || !WIFEXITED(code) || WEXITSTATUS(code) != 0) return 1;
    int fd = connect_to("qmp-status");
    if (fd < 0 || read_until(fd, "QMP") || say(fd, "{\"execute\":\"qmp_capabilities\"}\n") || read_until(fd, "return")
        || say(fd, "{\"execute\":\"query-status\"}\n") || read_until(fd, "\"status\"")) return 1;
    close(fd);
    return 0;
}
