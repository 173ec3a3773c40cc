#ifndef HPVM_CRUNTIME_H
#define HPVM_CRUNTIME_H

#include <spawn.h>
#include <stddef.h>
#include <sys/types.h>

/// The child of `posix_spawn` starts in the folder `path`.
/// The corresponding C function is `posix_spawn_file_actions_addchdir_np`.
int hpvm_runtime_spawn_addchdir(posix_spawn_file_actions_t *_Nonnull actions, const char *_Nonnull path);

/// The child of `posix_spawn` closes every descriptor from `from` up.
/// The corresponding C function is `posix_spawn_file_actions_addclosefrom_np`.
int hpvm_runtime_spawn_addclosefrom(posix_spawn_file_actions_t *_Nonnull actions, int from);

/// Sends `length` bytes on the Unix socket `socket` with the descriptor `fd` attached
/// (`SCM_RIGHTS`), as QMP's `getfd` expects it. Returns the bytes sent, or -errno.
/// The corresponding C function is `sendmsg`.
ssize_t hpvm_runtime_send_with_fd(int socket, const void *_Nonnull bytes, size_t length, int fd);

/// Creates the tap interface `name` (`IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, close-on-exec), puts
/// it on the Linux bridge `bridge` and brings it up. The interface lives as long as the returned
/// descriptor (or a copy of it) stays open. Returns the descriptor, or -errno with `*stage` set
/// to the step that failed: 1 opening /dev/net/tun, 2 `TUNSETIFF`, 3 a control socket,
/// 4 `SIOCBRADDIF`, 5 bringing the interface up.
int hpvm_runtime_tap_open(const char *_Nonnull name, const char *_Nonnull bridge, int *_Nonnull stage);

#endif
