#ifndef FACELEDGER_CLIBPQ_SHIM_H
#define FACELEDGER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
