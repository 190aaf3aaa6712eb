output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Subnets of the internet-facing ALB."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets of everything else; none gives its interfaces a public address."
  value       = aws_subnet.private[*].id
}

output "security_group_ids" {
  description = "Security group of each part: alb, dashboard, connectors, flink, msk, redis, maintenance, endpoints."
  value       = { for key, group in aws_security_group.this : key => group.id }
}
