/* libssh2 and libcrypto, loaded on first use instead of at every start.
 *
 * Only hpvmmigrate, hpvmsshsetup and hpvmaudit verify need them, yet linked as usual the dynamic
 * loader maps and relocates both (libcrypto's 21,000 relocations, 3,400 symbol look-ups) before
 * any command starts: about 0.8 ms of the 1.5 ms sqlite3 takes to start (bench/RESULTS.md).
 * Each function hpvm calls (lazy_symbols.h) is defined here with the library's own prototype,
 * so the compiler checks every signature; the first call opens the library and looks the
 * function up. The definitions are hidden: the libraries never bind to them. */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <libssh2.h>
#include <openssl/evp.h>

static void *hpvm_lazy_handles[2];
static const char *const hpvm_lazy_sonames[2] = {"libssh2.so.1", "libcrypto.so.3"};
static const char *const hpvm_lazy_packages[2] = {"libssh2-1", "libssl3"};
enum { hpvm_lazy_ssh2 = 0, hpvm_lazy_crypto = 1 };

/* The address of `name` in library `which`, opening it on first use. A library that cannot be
   loaded ends the process with a message naming the package that provides it (the Debian
   package depends on both, so only a broken installation gets there). */
static void *hpvm_lazy_symbol(int which, const char *name) {
    void *handle = __atomic_load_n(&hpvm_lazy_handles[which], __ATOMIC_ACQUIRE);
    if (handle == NULL) {
        handle = dlopen(hpvm_lazy_sonames[which], RTLD_LAZY | RTLD_LOCAL);
        if (handle == NULL) {
            fprintf(stderr, "hpvm: cannot load %s (package %s): %s\n", hpvm_lazy_sonames[which],
                    hpvm_lazy_packages[which], dlerror());
            exit(1);
        }
        __atomic_store_n(&hpvm_lazy_handles[which], handle, __ATOMIC_RELEASE);
    }
    void *symbol = dlsym(handle, name);
    if (symbol == NULL) {
        fprintf(stderr, "hpvm: %s has no %s: %s\n", hpvm_lazy_sonames[which], name, dlerror());
        exit(1);
    }
    return symbol;
}

#define HPVM_LAZY(library, type, name, parameters, arguments)                                        \
    __attribute__((visibility("hidden"))) type name parameters {                                  \
        static type(*function) parameters;                                                        \
        type(*found) parameters = __atomic_load_n(&function, __ATOMIC_ACQUIRE);                   \
        if (found == NULL) {                                                                      \
            found = (type(*) parameters)hpvm_lazy_symbol(hpvm_lazy_##library, #name);              \
            __atomic_store_n(&function, found, __ATOMIC_RELEASE);                                 \
        }                                                                                         \
        return found arguments;                                                                   \
    }
#include "lazy_symbols.h"

