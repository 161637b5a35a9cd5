/*
 * lprogram.h: system.run, a worker's way to run a program without a shell
 * (core/program.h does the running).
 */
#ifndef PSL_PROGRAM_H
#define PSL_PROGRAM_H

#include <lua.h>

/* system.run(argv [, opts]) -> { code, signal, stdout, stderr } */
int psL_system_run(lua_State *L);
/* The same name in the strict sandbox, which starts no program: raises. */
int psL_system_run_refused(lua_State *L);

#endif
