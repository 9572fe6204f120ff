// Header-only: SwiftPM needs one source file to build a C target.
#include "CPrefetch.h"
