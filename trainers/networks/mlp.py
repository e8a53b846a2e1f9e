"""The MLP trunk shared by the actor and the critics (defined with the critic artifact).

`rlif_data.policies.critic` owns it so that a saved critic loads without
trainer code; the actor's trunk uses the same module, which is what lines its
``Dense_0 .. Dense_{n-1}`` up with rlif_data's ``TanhMLP``.
"""

from rlif_data.policies.critic import MLP, default_kernel_init

__all__ = ["MLP", "default_kernel_init"]
