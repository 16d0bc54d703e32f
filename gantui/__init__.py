"""gantui: train GANs in the terminal and see, live, whether the training is healthy.

Only the version and `track` live here, so `import gantui` and `gantui --help` never pay for
torch or textual: `track` imports them when it is called.
"""

__version__ = "0.1.0"


def track(run_dir, *, G=None, D=None, opt_g=None, opt_d=None, loss="ns", config=None, real=None, **options):
    """Your own training loop under gantui's monitor, verdict and controls.

        with gantui.track("runs/mine", G=netG, D=netD, opt_g=optG, opt_d=optD, loss="ns") as run:
            for ...:
                ...  # your step
                run.step(d_loss=errD, g_loss=errG, d_real=D_x, d_fake=D_G_z)
                if run.should_stop:
                    break

    Writes the same run directory as `gantui run` (metrics with the `health` verdict, events,
    samples, safetensors checkpoints of G, D and the optimisers) and owns its lock and control
    channel, so `gantui watch RUN_DIR` shows it and its keys reach the loop. Options: steps,
    name, log_every, sample_every, checkpoint_every, keep, n_samples, latent_dim, latent_shape,
    seed, signals. See the README's "Your loop".
    """
    # Every room imports this package (for __version__), so it must not depend on a shell room:
    # the tracking room (which owns a run's lock and channel) is looked up by name when called.
    import importlib

    tracking = importlib.import_module("gantui.tracking")
    return tracking.track(run_dir, G=G, D=D, opt_g=opt_g, opt_d=opt_d, loss=loss, config=config, real=real,
                          **options)
