/*
 * lcore.c: the functions of require('psurvey.core') that belong to no
 * object: the codec, shipping, memory use, versions.
 */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "brief.h"
#include "buf.h"
#include "census.h"
#include "cpus.h"
#include "hash.h"
#include "lcodec.h"
#include "lpsurvey.h"
#include "lship.h"
#include "store.h"
#include "value.h"

/* core.encode(value [, canonical]) -> string */
static int core_encode(lua_State *L) {
  ps_buf_t b;
  psL_encerr_t e;
  luaL_checkany(L, 1);
  ps_buf_init(&b);
  if (psL_encode(L, 1, &b, lua_toboolean(L, 2), &e) != 0) {
    ps_buf_free(&b);
    return luaL_error(L, "value%s is %s, which cannot be encoded", e.path, e.what);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  ps_buf_free(&b);
  return 1;
}

/* core.brief(encoding [, width]) -> "a=1, b=x": a pset in one line, as
   failure lines show it (brief.h) */
static int core_brief(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer width = luaL_optinteger(L, 2, 60);
  luaL_argcheck(L, width > 0 && width <= 10000, 2, "width must be 1 to 10000");
  ps_buf_t b;
  ps_buf_init(&b);
  ps_brief_pset(s, n, (size_t)width, &b);
  if (b.failed) {
    ps_buf_free(&b);
    return luaL_error(L, "out of memory");
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  ps_buf_free(&b);
  return 1;
}

/* core.decode(string) -> value */
static int core_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[200];
  if (psL_decode(L, s, n, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  return 1;
}

/* core.ship(f [, canonical]) -> string; raises naming what cannot travel */
static int core_ship(lua_State *L) {
  ps_buf_t b;
  char err[700];
  luaL_checktype(L, 1, LUA_TFUNCTION);
  ps_buf_init(&b);
  if (psL_ship(L, 1, &b, lua_toboolean(L, 2), err, sizeof err) != 0) {
    ps_buf_free(&b);
    lua_pushstring(L, err);
    return lua_error(L);
  }
  lua_pushlstring(L, b.data, b.len);
  ps_buf_free(&b);
  return 1;
}

/* core.hash(s) -> 16 hex digits (hash.h) */
static int core_hash(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ps_hash(s, n, 0));
  lua_pushstring(L, hex);
  return 1;
}

/* core.pid() -> this process's id; core.hostname() -> its host's name */
static int core_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static int core_hostname(lua_State *L) {
  char host[256];
  if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  lua_pushstring(L, host);
  return 1;
}

/* core.vmem() -> resident GiB, peak resident GiB */
static int core_vmem(lua_State *L) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double now = (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024 * 1024);
  double peak = (double)ru.ru_maxrss / (1024.0 * 1024);
  /* The kernel updates the peak (its high-water mark) lazily, so it can
     lag behind what statm says is resident now: a peak is never below. */
  lua_pushnumber(L, now);
  lua_pushnumber(L, peak > now ? peak : now);
  return 2;
}

/* core.isatty(fd) -> boolean */
static int core_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.mkdir(path) -> true | fail, message (an existing directory is fine) */
static int core_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0777) == 0 || errno == EEXIST) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return luaL_fileresult(L, 0, path);
}

/* core.cwd() -> the working directory | fail, message */
static int core_cwd(lua_State *L) {
  char dir[PATH_MAX];
  if (getcwd(dir, sizeof dir) == NULL) return luaL_fileresult(L, 0, ".");
  lua_pushstring(L, dir);
  return 1;
}

/* core.alive(pid) -> whether a process of that id lives on this host */
static int core_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  lua_pushboolean(L, pid > 0 && pid <= INT_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM));
  return 1;
}

/* core.listdir(path) -> array of its entries' names (not . and ..),
   sorted | fail, message */
static int core_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (d == NULL) return luaL_fileresult(L, 0, path);
  lua_newtable(L);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

/* core.env_names(prefix) -> names of the environment variables with prefix */
static int core_env_names(lua_State *L) {
  extern char **environ;
  size_t n;
  const char *prefix = luaL_checklstring(L, 1, &n);
  lua_newtable(L);
  int k = 0;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, prefix, n) == 0) {
      const char *eq = strchr(*e, '=');
      lua_pushlstring(L, *e, eq ? (size_t)(eq - *e) : strlen(*e));
      lua_rawseti(L, -2, ++k);
    }
  return 1;
}

/* core.cpus() -> CPUs this process may use (affinity, cgroup quota), CPUs
   online */
static int core_cpus(lua_State *L) {
  lua_pushinteger(L, ps_cpus_usable());
  lua_pushinteger(L, ps_cpus_online());
  return 2;
}

/* core.memory() -> MiB of physical memory on this machine */
static int core_memory(lua_State *L) {
  long pages = sysconf(_SC_PHYS_PAGES), pagesize = sysconf(_SC_PAGESIZE);
  lua_pushinteger(L, pages > 0 && pagesize > 0 ? (lua_Integer)(pages / 1024) * pagesize / 1024 : 0);
  return 1;
}

/* core.sleep(seconds): a wait that a signal cuts short (Ctrl-C then
   reaches the Lua hook that raises "interrupted"). */
/* core.now() -> the time of day, Unix seconds with their fraction */
static int core_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)ps_now_us() / 1e6);
  return 1;
}

static int core_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (s > 0) {
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* core.census() -> { handles = n, engines = n, ... }: what the engine holds
   open now (census.h). */
static int core_census(lua_State *L) {
  lua_createtable(L, 0, PS_CENSUS_KINDS);
  for (int k = 0; k < PS_CENSUS_KINDS; k++) {
    lua_pushinteger(L, (lua_Integer)ps_census_count(k));
    lua_setfield(L, -2, ps_census_name(k));
  }
  return 1;
}

static const luaL_Reg core_funcs[] = {{"sleep", core_sleep},
                                      {"census", core_census},
                                      {"encode", core_encode},
                                      {"brief", core_brief},
                                      {"decode", core_decode},
                                      {"ship", core_ship},
                                      {"hash", core_hash},
                                      {"pid", core_pid},
                                      {"hostname", core_hostname},
                                      {"vmem", core_vmem},
                                      {"isatty", core_isatty},
                                      {"cpus", core_cpus},
                                      {"memory", core_memory},
                                      {"mkdir", core_mkdir},
                                      {"env_names", core_env_names},
                                      {"cwd", core_cwd},
                                      {"alive", core_alive},
                                      {"listdir", core_listdir},
                                      {"now", core_now},
                                      {NULL, NULL}};

int psL_open_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  psL_open_engine(L);
  psL_open_source(L);
  psL_open_store(L);
  lua_pushliteral(L, PSURVEY_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, PS_PROTOCOL);
  lua_setfield(L, -2, "protocol");
  lua_pushinteger(L, PS_NAME_MAX);
  lua_setfield(L, -2, "name_max");
  lua_pushinteger(L, PS_VALUE_MAX);
  lua_setfield(L, -2, "value_max");
  lua_pushstring(L, uv_version_string());
  lua_setfield(L, -2, "libuv_version");
  lua_pushstring(L, sqlite3_libversion());
  lua_setfield(L, -2, "sqlite_version");
  return 1;
}
