#ifndef HPVM_LAZY_LINK_H
#define HPVM_LAZY_LINK_H
/* Nothing to call: the target defines libssh2's and libcrypto's functions as lazy_symbols.h
   lists them. SSH, Checksum and Registry depend on it so that it is linked. */
#endif
