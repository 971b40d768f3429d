/* dataset.c — what every data plug-in shares: the shape of an item. */
#include "data/dataset.h"

void dm_data_shape(const dm_data_ops *ops, const void *opts, int *c, int *h, int *w)
{
    if (ops->shape) {
        ops->shape(opts, c, h, w);
        return;
    }
    *c = (int)ops->dim(opts);
    *h = 1;
    *w = 1;
}
