from .gradcheck import GradientCheckReport, gradient_check
