/* resample.h — nearest x2 upsampling and channel concatenation (the U-Net's decoder path).
 *
 *   upsample:  x (n, C, H, W) -> y (n, C, 2H, 2W), y[., ., 2a + i, 2b + j] = x[., ., a, b]
 *              (PyTorch's F.interpolate(scale_factor=2, mode="nearest"));
 *              backward: dx[a, b] = (dy[2a, 2b] + dy[2a, 2b + 1]) + (dy[2a + 1, 2b] + dy[2a + 1, 2b + 1])
 *   concat:    a (n, C1, H, W), b (n, C2, H, W) -> y (n, C1 + C2, H, W) (torch.cat([a, b], 1));
 *              backward splits dy into da and db.
 *
 * No parameters, no workspace. Backward writes dx (acc = 0) or adds to it (acc = 1: the tensor
 * feeds another layer too, as a U-Net's skip does). Threads: an OpenMP loop (static schedule) over
 * the n * C channel planes (upsample) or the items (concat); no value is a sum across planes, so
 * the bits do not depend on the thread count. Outputs must not overlap inputs. */
#ifndef DM_NN_RESAMPLE_H
#define DM_NN_RESAMPLE_H

void dm_upsample2_forward(int n, int c, int h, int w, const float *x, float *y);
/* dy (n, C, 2H, 2W) -> dx (n, C, H, W). */
void dm_upsample2_backward(int n, int c, int h, int w, const float *dy, float *dx, int acc_dx);

/* hw = H * W of both inputs. */
void dm_concat_forward(int n, int c1, int c2, int hw, const float *a, const float *b, float *y);
/* dy (n, C1 + C2, hw) -> da (n, C1, hw), db (n, C2, hw); either may be NULL (no gradient wanted). */
void dm_concat_backward(int n, int c1, int c2, int hw, const float *dy, float *da, int acc_a, float *db,
                        int acc_b);

#endif
