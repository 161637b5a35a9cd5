/* stage.c: the names of psurvey's columns of a stage (stage.h), which
   both kinds of stage read rows back with. */
#include "stage.h"

const char *const ps_meta_columns[PS_NMETA] = {
    [PS_META_INDEX] = "_index",
    [PS_META_STATUS] = "_status",
    [PS_META_EXCEPTION] = "_exception",
    [PS_META_TRACEBACK] = "_traceback",
    [PS_META_ATTEMPT] = "_attempt",
    [PS_META_WORKER] = "_worker",
    [PS_META_HOST] = "_host",
    [PS_META_START] = "_start",
    [PS_META_END] = "_end",
    [PS_META_DURATION] = "_duration",
    [PS_META_CPU] = "_cpu",
    [PS_META_MEMORY] = "_memory",
    [PS_META_NAME] = "_name",
    [PS_META_HASH] = "_hash",
    [PS_META_RUN] = "_run",
    [PS_META_TYPES] = "_types",
};
