/* The plug-in registries of the diffusion layer: adding a plug-in is one file and one line here. */
#include "diffusion/losses.h"
#include "diffusion/params.h"
#include "diffusion/samplers.h"
#include "diffusion/schedules.h"

const dm_plugin *const dm_schedule_registry[] = {
    &dm_schedule_ddpm_linear.info,
    &dm_schedule_cosine.info,
    &dm_schedule_vp.info,
    &dm_schedule_subvp.info,
    &dm_schedule_ve.info,
    &dm_schedule_edm.info,
    NULL,
};

const dm_plugin *const dm_param_registry[] = {
    &dm_param_eps.info,
    &dm_param_x0.info,
    &dm_param_v.info,
    &dm_param_score.info,
    &dm_param_edm.info,
    &dm_param_mu.info,
    &dm_param_consistency.info,
    NULL,
};

const dm_plugin *const dm_loss_registry[] = {
    &dm_loss_mse.info,
    &dm_loss_vlb.info,
    &dm_loss_hybrid.info,
    &dm_loss_ct.info,
    &dm_loss_ict.info,
    &dm_loss_cd.info,
    &dm_loss_xent.info,
    NULL,
};

const dm_plugin *const dm_sampler_registry[] = {
    &dm_sampler_ddpm.info,
    &dm_sampler_ddim.info,
    &dm_sampler_em.info,
    &dm_sampler_pc.info,
    &dm_sampler_euler.info,
    &dm_sampler_heun.info,
    &dm_sampler_rk45.info,
    &dm_sampler_dpmpp2m.info,
    &dm_sampler_cm.info,
    &dm_sampler_exact.info,
    NULL,
};
