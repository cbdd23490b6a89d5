// The libpq client API, as the ActPostgres wrapper sees it. No logic lives here.
#ifndef ACT_CLIBPQ_SHIM_H
#define ACT_CLIBPQ_SHIM_H

#include <libpq-fe.h>

#endif
