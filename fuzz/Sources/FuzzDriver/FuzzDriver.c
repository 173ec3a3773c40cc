// The declaration in include/FuzzDriver.h is all this module holds; libFuzzer defines the function.
#include "FuzzDriver.h"
