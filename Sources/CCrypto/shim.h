#ifndef HPVM_CCRYPTO_SHIM_H
#define HPVM_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
