#ifndef HPVM_CLIBSSH2_SHIM_H
#define HPVM_CLIBSSH2_SHIM_H

#include <libssh2.h>

/* Swift does not import libssh2's function-like macros; these wrappers stand in for the ones the
   SSH module calls. Lengths are byte counts. */

static const unsigned int hpvm_ssh2_channel_window_default = LIBSSH2_CHANNEL_WINDOW_DEFAULT;
static const unsigned int hpvm_ssh2_channel_packet_default = LIBSSH2_CHANNEL_PACKET_DEFAULT;

static inline LIBSSH2_SESSION *_Nullable hpvm_ssh2_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline LIBSSH2_CHANNEL *_Nullable hpvm_ssh2_channel_open_session(LIBSSH2_SESSION *_Nonnull session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1, LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                   LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline int hpvm_ssh2_channel_exec(LIBSSH2_CHANNEL *_Nonnull channel, const char *_Nonnull command,
                                         unsigned int length) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, command, length);
}

static inline ssize_t hpvm_ssh2_channel_read(LIBSSH2_CHANNEL *_Nonnull channel, char *_Nonnull buffer, size_t length) {
    return libssh2_channel_read_ex(channel, 0, buffer, length);
}

static inline ssize_t hpvm_ssh2_channel_read_stderr(LIBSSH2_CHANNEL *_Nonnull channel, char *_Nonnull buffer,
                                                    size_t length) {
    return libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, buffer, length);
}

static inline ssize_t hpvm_ssh2_channel_write(LIBSSH2_CHANNEL *_Nonnull channel, const char *_Nonnull buffer,
                                              size_t length) {
    return libssh2_channel_write_ex(channel, 0, buffer, length);
}

static inline int hpvm_ssh2_userauth_publickey_fromfile(LIBSSH2_SESSION *_Nonnull session,
                                                        const char *_Nonnull user, unsigned int userLength,
                                                        const char *_Nullable publicKey,
                                                        const char *_Nonnull privateKey,
                                                        const char *_Nullable passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(session, user, userLength, publicKey, privateKey, passphrase);
}

static inline int hpvm_ssh2_session_disconnect(LIBSSH2_SESSION *_Nonnull session, const char *_Nonnull reason) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, reason, "");
}

static inline int hpvm_ssh2_channel_close(LIBSSH2_CHANNEL *_Nonnull channel) {
    return libssh2_channel_close(channel);
}

#endif
