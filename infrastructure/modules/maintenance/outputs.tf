output "function_name" {
  description = "Name of the maintenance Lambda."
  value       = aws_lambda_function.this.function_name
}
