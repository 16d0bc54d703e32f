"""A plain PyTorch DCGAN training loop under gantui's monitor: the lines marked `# gantui` are all it adds.

The loop is the one of pytorch/examples' dcgan/main.py (BSD-3-Clause), written here for offline
data: Fashion-MNIST read straight from its idx files (no torchvision), or gantui's built-in
digits when they are not installed. Run it, then watch it from another terminal:

    python examples/dcgan_loop.py --run-dir runs/my-dcgan
    gantui watch runs/my-dcgan        # space pauses, ] doubles G's rate, s saves, x stops

Tiny and quick (what the tests run):  --niter 1 --n-images 400 --batchSize 8 --ngf 4 --ndf 4
"""

import argparse
import gzip
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

import gantui  # gantui

parser = argparse.ArgumentParser()
parser.add_argument("--dataroot", default="/usr/share/datasets/fashion-mnist",
                    help="folder of Fashion-MNIST's idx .gz files (gantui's digits when missing)")
parser.add_argument("--n-images", type=int, default=60000, help="how many training images to use")
parser.add_argument("--batchSize", type=int, default=64, help="input batch size")
parser.add_argument("--imageSize", type=int, default=64, help="the height / width of the images (64)")
parser.add_argument("--nz", type=int, default=100, help="size of the latent z vector")
parser.add_argument("--ngf", type=int, default=64)
parser.add_argument("--ndf", type=int, default=64)
parser.add_argument("--niter", type=int, default=25, help="number of epochs to train for")
parser.add_argument("--lr", type=float, default=0.0002, help="learning rate, default=0.0002")
parser.add_argument("--lrG", type=float, default=None, help="G's learning rate (default: --lr)")
parser.add_argument("--lrD", type=float, default=None, help="D's learning rate (default: --lr)")
parser.add_argument("--beta1", type=float, default=0.5, help="beta1 for adam. default=0.5")
parser.add_argument("--cuda", action="store_true", help="enables cuda")
parser.add_argument("--manualSeed", type=int, default=None, help="manual seed")
parser.add_argument("--run-dir", default="runs/dcgan-loop", help="gantui's run directory")  # gantui
opt = parser.parse_args()
print(opt)

if opt.manualSeed is None:
    opt.manualSeed = random.randint(1, 10000)
print("Random Seed: ", opt.manualSeed)
random.seed(opt.manualSeed)
torch.manual_seed(opt.manualSeed)
device = torch.device("cuda:0" if opt.cuda else "cpu")


def load_images(root, n, size):
    """(n, 1, size, size) in [-1, 1]: Fashion-MNIST's training images, or gantui's digits."""
    path = Path(root) / "train-images-idx3-ubyte.gz"
    if path.is_file():
        with gzip.open(path, "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
        x = torch.from_numpy(raw.astype(np.float32) / 127.5 - 1.0)
    else:
        from gantui.data.glyphs import render_digits
        x, _ = render_digits(n, seed=opt.manualSeed, size=28)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)


images = load_images(opt.dataroot, opt.n_images, opt.imageSize)
dataset = torch.utils.data.TensorDataset(images, torch.zeros(len(images)))
dataloader = torch.utils.data.DataLoader(dataset, batch_size=opt.batchSize, shuffle=True, drop_last=True)

nz, ngf, ndf, nc = int(opt.nz), int(opt.ngf), int(opt.ndf), 1


# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),       # Z -> (ngf*8) x 4 x 4
            nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # -> 8 x 8
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # -> 16 x 16
            nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),      # -> 32 x 32
            nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),           # -> nc x 64 x 64
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),                    # nc x 64 x 64 -> ndf x 32 x 32
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),               # -> 16 x 16
            nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),           # -> 8 x 8
            nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),           # -> 4 x 4
            nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),                 # -> 1 x 1
            nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


netG = Generator().to(device)
netG.apply(weights_init)
netD = Discriminator().to(device)
netD.apply(weights_init)

criterion = nn.BCELoss()
fixed_noise = torch.randn(opt.batchSize, nz, 1, 1, device=device)
real_label, fake_label = 1.0, 0.0

# setup optimizer
optimizerD = optim.Adam(netD.parameters(), lr=opt.lrD or opt.lr, betas=(opt.beta1, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=opt.lrG or opt.lr, betas=(opt.beta1, 0.999))

with gantui.track(opt.run_dir, G=netG, D=netD, opt_g=optimizerG, opt_d=optimizerD, loss="ns", config=vars(opt), real=images[:512], steps=opt.niter * len(dataloader)) as run:  # gantui
    for epoch in range(opt.niter):
        for i, data in enumerate(dataloader, 0):
            ############################
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            ###########################
            # train with real
            netD.zero_grad()
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)

            output = netD(real_cpu)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()

            # train with fake
            noise = torch.randn(batch_size, nz, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()

            ############################
            # (2) Update G network: maximize log(D(G(z)))
            ###########################
            netG.zero_grad()
            label.fill_(real_label)  # fake labels are real for generator cost
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()
            run.step(d_loss=errD, g_loss=errG, d_real=D_x, d_fake=D_G_z1)  # gantui

            if i % 50 == 0:
                print("[%d/%d][%d/%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f"
                      % (epoch, opt.niter, i, len(dataloader), errD.item(), errG.item(), D_x, D_G_z1, D_G_z2))
            if i % 100 == 0:
                with torch.no_grad():
                    run.samples(netG(fixed_noise))  # gantui
            if run.should_stop:  # gantui
                break  # gantui
        if run.should_stop:  # gantui
            break  # gantui
