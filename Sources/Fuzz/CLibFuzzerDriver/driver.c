#include "CLibFuzzerDriver.h"

// Both come from elsewhere at link time: LLVMFuzzerRunDriver from libFuzzer (linked by `-sanitize=fuzzer`),
// LLVMFuzzerTestOneInput from the Swift harness (`@_cdecl`).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int hms_fuzz_run(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
