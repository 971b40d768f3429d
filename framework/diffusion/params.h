/* params.h — the parameterization plug-ins. */
#ifndef DM_DIFFUSION_PARAMS_H
#define DM_DIFFUSION_PARAMS_H

#include "diffusion/param.h"

extern const dm_param_ops dm_param_eps;

#endif
