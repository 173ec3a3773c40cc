#define _GNU_SOURCE
#include "CRuntime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int hpvm_runtime_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int hpvm_runtime_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

ssize_t hpvm_runtime_send_with_fd(int socket, const void *bytes, size_t length, int fd) {
    struct iovec iov = {.iov_base = (void *)bytes, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : sent;
}

int hpvm_runtime_tap_open(const char *name, const char *bridge, int *stage) {
    *stage = 1;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    *stage = 2;
    if (ioctl(fd, TUNSETIFF, &request) < 0) goto fail;
    *stage = 3;
    int control = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (control < 0) goto fail;
    *stage = 4;
    struct ifreq port;
    memset(&port, 0, sizeof(port));
    strncpy(port.ifr_name, bridge, IFNAMSIZ - 1);
    port.ifr_ifindex = (int)if_nametoindex(request.ifr_name);
    if (port.ifr_ifindex == 0 || ioctl(control, SIOCBRADDIF, &port) < 0) goto fail_control;
    *stage = 5;
    struct ifreq flags;
    memset(&flags, 0, sizeof(flags));
    strncpy(flags.ifr_name, request.ifr_name, IFNAMSIZ - 1);
    if (ioctl(control, SIOCGIFFLAGS, &flags) < 0) goto fail_control;
    flags.ifr_flags |= IFF_UP;
    if (ioctl(control, SIOCSIFFLAGS, &flags) < 0) goto fail_control;
    close(control);
    return fd;
fail_control: {
        int saved = errno;
        close(control);
        errno = saved;
    }
fail: {
        int saved = errno;
        close(fd);
        return -saved;
    }
}
