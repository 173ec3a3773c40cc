#ifndef HPVM_CSYSLOG_SHIM_H
#define HPVM_CSYSLOG_SHIM_H
#include <syslog.h>

/// Logs one message as is: syslog(3) with the fixed format "%s", which Swift cannot call
/// itself (a variadic function); Swift's withVaList would pass a String as a bridged object,
/// not as the C string "%s" reads.
static inline void hpvm_syslog(int priority, const char *_Nonnull message) {
    syslog(priority, "%s", message);
}
#endif
