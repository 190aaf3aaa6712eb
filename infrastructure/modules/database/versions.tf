terraform {
  required_version = ">= 1.6"
  required_providers {
    # 6.38 brings aws_msk_topic; FLINK-2_3 needs a release whose runtime list has it (README, "Provider").
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.38, < 7.0"
    }
  }
}
