// The wit-bindgen bindings of the world this file is compiled for: the build passes
// -DKILN_WORLD_FILTER or -DKILN_WORLD_WEIGHER. The WIT types (kiln_plugin_types_*) have the
// same names in both worlds, so pool_table.c and capacity.c serve the filter and the weigher.
#ifndef KILN_EXAMPLE_WORLD_H
#define KILN_EXAMPLE_WORLD_H

#if defined(KILN_WORLD_FILTER)
#include "filter.h"
typedef filter_string_t world_string_t;
#define world_string_dup_n filter_string_dup_n
#define world_string_free filter_string_free
#elif defined(KILN_WORLD_WEIGHER)
#include "weigher.h"
typedef weigher_string_t world_string_t;
#define world_string_dup_n weigher_string_dup_n
#define world_string_free weigher_string_free
#else
#error "compile with -DKILN_WORLD_FILTER or -DKILN_WORLD_WEIGHER"
#endif

#endif
