/* The functions hpvm calls in libssh2 and libcrypto, which it loads on first use (lazy_link.c):
   HPVM_LAZY(library, return type, name, parameters, arguments). scripts/package links a probe
   with the same list so that dpkg-shlibdeps computes the packages' Depends for them too. */

HPVM_LAZY(ssh2, int, libssh2_init, (int flags), (flags))
HPVM_LAZY(ssh2, LIBSSH2_SESSION *, libssh2_session_init_ex,
          (void *(*my_alloc)(size_t count, void **abstract), void (*my_free)(void *ptr, void **abstract),
           void *(*my_realloc)(void *ptr, size_t count, void **abstract), void *abstract),
          (my_alloc, my_free, my_realloc, abstract))
HPVM_LAZY(ssh2, int, libssh2_session_free, (LIBSSH2_SESSION *session), (session))
HPVM_LAZY(ssh2, void, libssh2_session_set_blocking, (LIBSSH2_SESSION *session, int blocking), (session, blocking))
HPVM_LAZY(ssh2, void, libssh2_session_set_timeout, (LIBSSH2_SESSION *session, long timeout), (session, timeout))
HPVM_LAZY(ssh2, int, libssh2_session_method_pref, (LIBSSH2_SESSION *session, int method_type, const char *prefs),
          (session, method_type, prefs))
HPVM_LAZY(ssh2, int, libssh2_session_handshake, (LIBSSH2_SESSION *session, libssh2_socket_t sock), (session, sock))
HPVM_LAZY(ssh2, const char *, libssh2_session_hostkey, (LIBSSH2_SESSION *session, size_t *len, int *type),
          (session, len, type))
HPVM_LAZY(ssh2, const char *, libssh2_hostkey_hash, (LIBSSH2_SESSION *session, int hash_type), (session, hash_type))
HPVM_LAZY(ssh2, int, libssh2_session_last_error, (LIBSSH2_SESSION *session, char **errmsg, int *errmsg_len, int want_buf),
          (session, errmsg, errmsg_len, want_buf))
HPVM_LAZY(ssh2, int, libssh2_session_last_errno, (LIBSSH2_SESSION *session), (session))
HPVM_LAZY(ssh2, int, libssh2_session_disconnect_ex,
          (LIBSSH2_SESSION *session, int reason, const char *description, const char *lang),
          (session, reason, description, lang))
HPVM_LAZY(ssh2, void, libssh2_keepalive_config, (LIBSSH2_SESSION *session, int want_reply, unsigned interval),
          (session, want_reply, interval))
HPVM_LAZY(ssh2, int, libssh2_keepalive_send, (LIBSSH2_SESSION *session, int *seconds_to_next), (session, seconds_to_next))
HPVM_LAZY(ssh2, char *, libssh2_userauth_list, (LIBSSH2_SESSION *session, const char *username, unsigned int username_len),
          (session, username, username_len))
HPVM_LAZY(ssh2, int, libssh2_userauth_authenticated, (LIBSSH2_SESSION *session), (session))
HPVM_LAZY(ssh2, int, libssh2_userauth_publickey_fromfile_ex,
          (LIBSSH2_SESSION *session, const char *username, unsigned int username_len, const char *publickey,
           const char *privatekey, const char *passphrase),
          (session, username, username_len, publickey, privatekey, passphrase))
HPVM_LAZY(ssh2, LIBSSH2_KNOWNHOSTS *, libssh2_knownhost_init, (LIBSSH2_SESSION *session), (session))
HPVM_LAZY(ssh2, void, libssh2_knownhost_free, (LIBSSH2_KNOWNHOSTS *hosts), (hosts))
HPVM_LAZY(ssh2, int, libssh2_knownhost_readfile, (LIBSSH2_KNOWNHOSTS *hosts, const char *filename, int type),
          (hosts, filename, type))
HPVM_LAZY(ssh2, int, libssh2_knownhost_checkp,
          (LIBSSH2_KNOWNHOSTS *hosts, const char *host, int port, const char *key, size_t keylen, int typemask,
           struct libssh2_knownhost **knownhost),
          (hosts, host, port, key, keylen, typemask, knownhost))
HPVM_LAZY(ssh2, LIBSSH2_CHANNEL *, libssh2_channel_open_ex,
          (LIBSSH2_SESSION *session, const char *channel_type, unsigned int channel_type_len, unsigned int window_size,
           unsigned int packet_size, const char *message, unsigned int message_len),
          (session, channel_type, channel_type_len, window_size, packet_size, message, message_len))
HPVM_LAZY(ssh2, int, libssh2_channel_process_startup,
          (LIBSSH2_CHANNEL *channel, const char *request, unsigned int request_len, const char *message,
           unsigned int message_len),
          (channel, request, request_len, message, message_len))
HPVM_LAZY(ssh2, ssize_t, libssh2_channel_read_ex, (LIBSSH2_CHANNEL *channel, int stream_id, char *buf, size_t buflen),
          (channel, stream_id, buf, buflen))
HPVM_LAZY(ssh2, ssize_t, libssh2_channel_write_ex,
          (LIBSSH2_CHANNEL *channel, int stream_id, const char *buf, size_t buflen), (channel, stream_id, buf, buflen))
HPVM_LAZY(ssh2, int, libssh2_channel_send_eof, (LIBSSH2_CHANNEL *channel), (channel))
HPVM_LAZY(ssh2, int, libssh2_channel_close, (LIBSSH2_CHANNEL *channel), (channel))
HPVM_LAZY(ssh2, int, libssh2_channel_wait_closed, (LIBSSH2_CHANNEL *channel), (channel))
HPVM_LAZY(ssh2, int, libssh2_channel_get_exit_status, (LIBSSH2_CHANNEL *channel), (channel))
HPVM_LAZY(ssh2, int, libssh2_channel_free, (LIBSSH2_CHANNEL *channel), (channel))

HPVM_LAZY(crypto, const EVP_MD *, EVP_sha256, (void), ())
HPVM_LAZY(crypto, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
HPVM_LAZY(crypto, void, EVP_MD_CTX_free, (EVP_MD_CTX *ctx), (ctx))
HPVM_LAZY(crypto, int, EVP_DigestInit_ex, (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl), (ctx, type, impl))
HPVM_LAZY(crypto, int, EVP_DigestUpdate, (EVP_MD_CTX *ctx, const void *d, size_t cnt), (ctx, d, cnt))
HPVM_LAZY(crypto, int, EVP_DigestFinal_ex, (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s), (ctx, md, s))
HPVM_LAZY(crypto, int, EVP_Digest,
          (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl),
          (data, count, md, size, type, impl))
