/* classifier_net.h — a trained network as a dm_classifier: logits F(c_in x, c_noise(t)) of C
 * classes (a run trained with diffusion.loss xent), log p(y | x_t) = log_softmax(F)_y, and its
 * gradient in x by one backward pass with the cotangent onehot(y) - softmax(F), times c_in. The
 * parameter block is borrowed; the context owns its activations (one thread of control). */
#ifndef DM_DIFFUSION_CLASSIFIER_NET_H
#define DM_DIFFUSION_CLASSIFIER_NET_H

#include "diffusion/classifier.h"
#include "diffusion/param.h"
#include "diffusion/schedule.h"
#include "nn/net.h"

typedef struct dm_net_classifier {
    const dm_net *net;
    const float *params;
    const dm_schedule *sched;
    const dm_param_ops *param;
    const void *param_opts;
    double sigma_data;
    dm_net_ws ws;
    float *xin, *tin, *F, *dout, *dxin, *grads;
    double *cin;   /* (max_batch) each row's c_in, for the gradient's chain rule */
    int clean;     /* a classifier of clean items (diffusion.loss xent, clean): x as it is, c_noise 0,
                    * whatever t; set after init */
} dm_net_classifier;

dm_status dm_net_classifier_init(dm_net_classifier *nc, dm_classifier *clf, const dm_net *net, const float *params,
                                 const dm_schedule *sched, const dm_param_ops *param, const void *param_opts,
                                 double sigma_data, size_t max_batch, char *err);
void dm_net_classifier_free(dm_net_classifier *nc);

/* log_softmax of one row of C logits into out (C), in double. */
void dm_log_softmax(size_t C, const float *logits, double *out);

#endif
