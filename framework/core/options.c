#include "core/options.h"

#include <string.h>

const dm_plugin *dm_registry_find(const dm_plugin *const *registry, const char *name)
{
    for (size_t i = 0; registry && registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}
