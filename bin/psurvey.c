/*
 * psurvey.c: the host program. One binary is the command line, the
 * worker (`psurvey worker`) and the ssh agent (`psurvey agent`, which
 * needs no Lua state: core/agent.c). Like lua.c it owns the Lua state
 * from the first instruction; its Lua modules are compiled in
 * (embedded_lua.c), so it needs no files beside it. Everything about the
 * command line itself is in lua/psurvey/cli.lua.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "auth.h"
#include "census.h"
#include "dial.h"
#include "lpsurvey.h"

struct ps_embedded {
  const char *name, *chunkname, *code;
  size_t size;
};
extern const struct ps_embedded ps_embedded_lua[];

static lua_State *globalL;

static int interrupted_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  return 1;
}

/* Ctrl-C while the script runs Lua code: raise an error at the next hook,
   as lua.c does. (While map() runs, the engine handles it.) The error is
   the table that map() raises when interrupted, { interrupted = signal,
   message = ... }, so that the command line says "interrupted", marks the
   run so and exits 130, as it does for a map() interrupted. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, SIGINT);
  lua_setfield(L, -2, "interrupted");
  lua_pushliteral(L, "interrupted");
  lua_setfield(L, -2, "message");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, interrupted_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setmetatable(L, -2);
  lua_error(L);
}

static void on_sigint(int sig) {
  signal(sig, SIG_DFL); /* a second Ctrl-C kills */
  lua_sethook(globalL, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int open_core(lua_State *L) {
  psL_open_core(L);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    lua_pushlstring(L, exe, (size_t)n);
    lua_setfield(L, -2, "exe_path");
  }
  return 1;
}

static int load_embedded(lua_State *L) {
  const struct ps_embedded *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, m->code, m->size, m->chunkname) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    /* A table error (cli.lua raises those for clean exits) passes as is. */
    lua_settop(L, 1);
    return 1;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_core);
  lua_setfield(L, -2, "psurvey.core");
  for (const struct ps_embedded *m = ps_embedded_lua; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "psurvey.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}

/* With PSURVEY_CENSUS set (the specs set it), names what the engine left
   open once the Lua state, and with it every engine and database, is
   closed: anything is a leak. */
static void report_census(void) {
  char text[512];
  size_t o = 0;
  for (int k = 0; k < PS_CENSUS_KINDS && o < sizeof text; k++) {
    int64_t n = ps_census_count(k);
    if (n == 0) continue;
    int w = snprintf(text + o, sizeof text - o, "%s%s=%lld", o ? ", " : "", ps_census_name(k),
                     (long long)n);
    if (w > 0) o += (size_t)w;
  }
  if (o > 0) fprintf(stderr, "psurvey: census: still open at exit: %s\n", text);
}

/* The run's token for `agent --connect`: from --token-file FILE (which
   only its owner may read), or PSURVEY_AGENT_TOKEN, taken out of the
   environment so that no worker inherits it. NULL after saying why. */
static const char *agent_token(const char *file, char *buf, size_t size) {
  if (file) {
    struct stat st;
    FILE *f = fopen(file, "r");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
      fprintf(stderr, "psurvey agent: cannot read the token file %s: %s\n", file, strerror(errno));
      if (f) fclose(f);
      return NULL;
    }
    if ((st.st_mode & 077) != 0 || st.st_uid != getuid()) {
      fprintf(stderr, "psurvey agent: the token file %s must be yours and mode 0600 (it is %03o)\n",
              file, (unsigned)(st.st_mode & 0777));
      fclose(f);
      return NULL;
    }
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
  } else {
    const char *env = getenv("PSURVEY_AGENT_TOKEN");
    snprintf(buf, size, "%s", env ? env : "");
    unsetenv("PSURVEY_AGENT_TOKEN");
  }
  if (strlen(buf) < PS_AUTH_TOKEN_MIN) {
    fprintf(stderr,
            "psurvey agent: --connect needs the run's token (at least %d characters) in "
            "PSURVEY_AGENT_TOKEN or --token-file FILE\n",
            PS_AUTH_TOKEN_MIN);
    return NULL;
  }
  return buf;
}

/* psurvey agent [--connect HOST:PORT [--token-file FILE] [--slots N]] */
static int agent_main(int argc, char **argv) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "psurvey agent: cannot find its own program\n");
    return 2;
  }
  exe[n] = '\0';
  const char *connect = NULL, *token_file = NULL;
  long slots = 0;
  for (int k = 2; k < argc; k++) {
    char *end = NULL;
    if (strcmp(argv[k], "--connect") == 0 && k + 1 < argc) {
      connect = argv[++k];
    } else if (strcmp(argv[k], "--token-file") == 0 && k + 1 < argc) {
      token_file = argv[++k];
    } else if (strcmp(argv[k], "--slots") == 0 && k + 1 < argc &&
               (slots = strtol(argv[k + 1], &end, 10)) >= 1 && slots <= 4096 && *end == '\0') {
      k++;
    } else {
      fprintf(stderr,
              "usage: psurvey agent [--connect HOST:PORT [--token-file FILE] [--slots N]]\n"
              "  --slots N: run N workers at once (1 to 4096), not one per CPU\n");
      return 2;
    }
  }
  if (connect == NULL) return ps_agent_main(exe, -1, (int)slots);
  char token[512];
  if (agent_token(token_file, token, sizeof token) == NULL) return 2;
  int fd;
  ps_err_t err;
  if (ps_dial_driver(connect, token, 10000, &fd, &err) != 0) {
    fprintf(stderr, "psurvey agent: %s\n", err.msg);
    return 1;
  }
  return ps_agent_main(exe, fd, (int)slots);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "worker") == 0) return psL_worker_main(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "agent") == 0) return agent_main(argc, argv);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "psurvey: cannot create a Lua state: not enough memory\n");
    return 3;
  }
  globalL = L;
  signal(SIGINT, on_sigint);
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 1);
  int code;
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "psurvey: %s\n", msg ? msg : "(error object is not a string)");
    code = 3;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  fflush(stdout);
  lua_close(L);
  if (getenv("PSURVEY_CENSUS")) report_census();
  return code;
}
