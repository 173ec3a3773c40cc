#ifndef HPVM_FUZZ_DRIVER_H
#define HPVM_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (in the runtime that -sanitize=fuzzer links). SwiftPM names an executable's
/// entry point itself, so libFuzzer's own main is never used: each fuzz target's main calls this.
int LLVMFuzzerRunDriver(int *_Nonnull argc, char *_Nullable *_Nonnull *_Nonnull argv,
                        int (*_Nonnull callback)(const uint8_t *_Nullable data, size_t size));

#endif
