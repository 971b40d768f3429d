/* net_mlp.h — the toy MLP's options and its network (nn/net.h). */
#ifndef DM_NN_NET_MLP_H
#define DM_NN_NET_MLP_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/net.h"

typedef struct dm_mlp_opts {
    int64_t width, depth, nfreq;
    bool conditional;   /* class-conditional: the label's one-hot code joins the input */
} dm_mlp_opts;

extern const dm_net_vt dm_net_mlp;

/* An MLP network of point data built directly (tests, tools): dim inputs, out_dim outputs,
 * n_classes > 0 for a conditional one. */
dm_status dm_net_mlp_new(dm_net *net, int dim, int out_dim, int n_classes, int width, int depth, int nfreq,
                         char *err);

#endif
